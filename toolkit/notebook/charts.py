"""bqplot charts the widgets update in place (a trait change per refresh, no redraw of the page).

bqplot was kept over plotly's FigureWidget: it is an ipywidget itself (its front end ships in
the wheel and renders in JupyterLab with no network), and a refresh sends only the changed
``x``/``y`` arrays, so the live charts update smoothly every second.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import bqplot
import ipywidgets as widgets
import numpy as np

__all__ = ["SeriesChart", "CostCurve", "PALETTE", "color_for", "to_dates"]

PALETTE = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf"]
ONLINE_COLOR, BATCH_COLOR = "#1f77b4", "#ff7f0e"


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def to_dates(ts: Sequence[float]) -> np.ndarray:
    return (np.asarray(ts, dtype=float) * 1000).astype("datetime64[ms]")


def _margin() -> dict[str, int]:
    return {"top": 34, "bottom": 36, "left": 52, "right": 12}


class SeriesChart:
    """One value per deployment over time: a line per key, created on first use."""

    def __init__(self, title: str, y_label: str, width: str = "33%", height: str = "230px") -> None:
        self.x_scale = bqplot.DateScale()
        self.y_scale = bqplot.LinearScale(min=0.0)
        axes = [bqplot.Axis(scale=self.x_scale, tick_format="%H:%M:%S", num_ticks=4),
                bqplot.Axis(scale=self.y_scale, orientation="vertical", label=y_label, tick_format=".3~s")]
        self.figure = bqplot.Figure(marks=[], axes=axes, title=title, fig_margin=_margin(),
                                    legend_location="top-left", animation_duration=0, display_toolbar=False,
                                    layout=widgets.Layout(width=width, height=height))
        self.lines: dict[str, bqplot.Lines] = {}

    def set(self, key: str, ts: Sequence[float], values: Sequence[float | None], color: str,
            dashed: bool = False, label: str | None = None) -> None:
        ys = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        xs = to_dates(ts)
        line = self.lines.get(key)
        if line is None:
            line = bqplot.Lines(x=xs, y=ys, scales={"x": self.x_scale, "y": self.y_scale}, colors=[color],
                                labels=[label or key], display_legend=True, stroke_width=2,
                                line_style="dashed" if dashed else "solid")
            self.lines[key] = line
            self.figure.marks = [*self.figure.marks, line]
            return
        with line.hold_sync():
            line.x, line.y = xs, ys

    def drop_missing(self, keep: set[str]) -> None:
        gone = [k for k in self.lines if k not in keep]
        if gone:
            for k in gone:
                self.lines.pop(k)
            self.figure.marks = list(self.lines.values())


def _label(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    for unit, size in (("week", 604800), ("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds / size
            return f"{n:.0f} {unit}" + ("s" if unit in ("week", "day") and n >= 2 else "")
    return f"{seconds:.0f} s"


class CostCurve:
    """Monthly cost of online and batch against how soon results are needed (log-log), with the
    current answer marked and a dashed rule where the recommendation flips."""

    def __init__(self) -> None:
        # Ordinal x: one category per point of the (already log-spaced) sweep, named by its
        # duration ("200 ms", "5 min", "1 day"), so the axis reads in words.
        self.x_scale = bqplot.OrdinalScale()
        self.y_scale = bqplot.LogScale()
        self.x_axis = bqplot.Axis(scale=self.x_scale, label="results needed within", tick_rotate=-30)
        self.y_axis = bqplot.Axis(scale=self.y_scale, orientation="vertical", label="cost per month",
                                  tick_format="$.3~g")
        s = {"x": self.x_scale, "y": self.y_scale}
        self.online = bqplot.Lines(x=[""], y=[1.0], scales=s, colors=[ONLINE_COLOR], labels=["online"],
                                   display_legend=True, marker="circle", marker_size=20, stroke_width=2)
        self.batch = bqplot.Lines(x=[""], y=[1.0], scales=s, colors=[BATCH_COLOR], labels=["batch"],
                                  display_legend=True, marker="square", marker_size=20, stroke_width=2)
        self.flips = bqplot.Lines(x=[["", ""]], y=[[1.0, 1.0]], scales=s, colors=["#555"], line_style="dashed",
                                  stroke_width=1, opacities=[0.0])
        self.flip_labels = bqplot.Label(x=[""], y=[1.0], text=[""], scales=s, colors=["#333"], default_size=12,
                                        align="middle")
        self.now = bqplot.Scatter(x=[""], y=[1.0], scales=s, colors=["#2e7d32"], marker="diamond",
                                  default_size=90, labels=["your answer"], display_legend=True, opacities=[0.0])
        self.figure = bqplot.Figure(
            marks=[self.online, self.batch, self.flips, self.flip_labels, self.now],
            axes=[self.x_axis, self.y_axis], title="Cost against how soon results are needed",
            fig_margin={"top": 34, "bottom": 40, "left": 64, "right": 12}, legend_location="bottom-left",
            animation_duration=0, display_toolbar=False, layout=widgets.Layout(width="560px", height="300px"))
        self.points: list[dict[str, Any]] = []

    def update(self, points: list[dict[str, Any]], current_s: float | None) -> list[float]:
        """``points``: [{"need_s", "online", "batch" (monthly cost or None), "recommendation"}] in
        increasing need_s.  Returns the flip positions (seconds)."""
        self.points = points
        if not points:
            return []
        xs: list[str] = []
        for p in points:  # categories must be unique: two sweep points may round to one label
            label = _label(p["need_s"])
            while label in xs:
                label += " "
            xs.append(label)

        def ys(key: str) -> list[float]:
            return [p[key] if p.get(key) and p[key] > 0 else np.nan for p in points]

        costs = [v for p in points for v in (p.get("online"), p.get("batch")) if v and v > 0]
        lo, hi = (min(costs), max(costs)) if costs else (0.01, 1.0)
        lo, hi = lo / 2, hi * 3
        decades = [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
        flips: list[float] = []
        flip_x: list[str] = []
        names: list[str] = []
        for i, (a, b) in enumerate(zip(points, points[1:])):
            if a["recommendation"] != b["recommendation"]:
                flips.append(math.sqrt(a["need_s"] * b["need_s"]))
                flip_x.append(xs[i + 1])  # the first duration with the other answer
                names.append(f"{a['recommendation']} → {b['recommendation']}")
        with self.figure.hold_sync():
            self.y_scale.min, self.y_scale.max = lo, hi
            self.y_axis.tick_values = [d for d in decades if lo <= d <= hi] or decades
            self.x_scale.domain = xs
            self.online.x, self.online.y = xs, ys("online")
            self.batch.x, self.batch.y = xs, ys("batch")
            if flips:
                self.flips.x = [[f, f] for f in flip_x]
                self.flips.y = [[lo, hi] for _ in flip_x]
                self.flips.opacities = [1.0] * len(flip_x)
                self.flip_labels.x, self.flip_labels.y, self.flip_labels.text = flip_x, [lo * 1.6] * len(flip_x), names
            else:
                self.flips.opacities = [0.0]
                self.flip_labels.text = [""]
            chosen = next((i for i, p in enumerate(points) if current_s and abs(p["need_s"] - current_s) <= 1e-6 * current_s),
                          None)
            cost = points[chosen].get(points[chosen]["recommendation"]) if chosen is not None else None
            if cost and cost > 0:
                self.now.x, self.now.y, self.now.opacities = [xs[chosen]], [cost], [1.0]
        return flips
