"""``EndpointDashboard``: an online endpoint's deployments, traffic and mirror sliders, live
charts refreshed in a background thread, autoscaler events, a test box and log tails."""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

import ipywidgets as widgets

from ._base import Panel, Refresher, esc, table_html
from ._live import endpoint_frame, events_after, example_request, invoke_raw, log_tail, stats_history
from .charts import SeriesChart, color_for

__all__ = ["EndpointDashboard", "traffic_problem"]

HISTORY_POINTS = 700          # ~15 min of 10 s buckets plus ~10 min of live points
MAX_MIRROR = 50


def traffic_problem(traffic: dict[str, int], mirror: dict[str, int]) -> str | None:
    """Why this traffic table cannot be applied (None when it can): the host's rules, said first."""
    total = sum(traffic.values())
    if total != 100:
        return f"traffic sums to {total}%; it must sum to 100% to apply"
    mirrored = {d: p for d, p in mirror.items() if p}
    if len(mirrored) > 1:
        return "mirror traffic to one deployment at most"
    for d, p in mirrored.items():
        if p > MAX_MIRROR:
            return f"mirror at most {MAX_MIRROR}% (to {d})"
        if traffic.get(d):
            return f"{d} cannot be mirrored while it has live traffic"
    return None


class EndpointDashboard(Panel):
    """Live view and controls of one online endpoint.  ``close()`` stops its refresh thread."""

    def __init__(self, ws: Any, endpoint: str, *, interval: float = 1.5) -> None:
        super().__init__(ws)
        self.endpoint = endpoint
        self.interval = interval
        self.frame: dict[str, Any] = {}
        self.points: dict[str, deque[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._cursor = 0
        self._deployment_names: tuple[str, ...] = ()
        self._log_offset: int | None = None
        self._log_instance: str | None = None

        self.header = widgets.HTML()
        self.deployments_html = widgets.HTML()
        self.traffic_sliders: dict[str, widgets.IntSlider] = {}
        self.mirror_sliders: dict[str, widgets.IntSlider] = {}
        self.sliders_box = widgets.VBox()
        self.apply_button = widgets.Button(description="Apply traffic", button_style="primary", icon="check", disabled=True)
        self.apply_reason = widgets.HTML()
        self.reset_button = widgets.Button(description="Reset", icon="undo", tooltip="Back to the host's traffic table")
        self.rps_chart = SeriesChart("requests/s", "req/s")
        self.latency_chart = SeriesChart("latency p50 (solid) / p99 (dashed)", "ms")
        self.errors_chart = SeriesChart("errors (status ≥ 400)", "errors")
        self.counts_html = widgets.HTML()
        self.events_html = widgets.HTML()
        # test box
        self.test_target = widgets.Dropdown(description="send to", options=[("the endpoint (traffic table)", "")],
                                            layout=widgets.Layout(width="340px"))
        self.test_body = widgets.Textarea(layout=widgets.Layout(width="560px", height="110px"))
        self.send_button = widgets.Button(description="Send", button_style="info", icon="paper-plane")
        self.send_button.add_class("endpoints-send")
        self.test_result = widgets.HTML()
        self.test_result.add_class("endpoints-test-result")
        self.last_response: dict[str, Any] | None = None
        # logs
        self.log_target = widgets.Dropdown(description="log of", layout=widgets.Layout(width="260px"))
        self.log_button = widgets.Button(description="Show log tail", icon="file-text-o")
        self.log_more = widgets.Button(description="More", icon="refresh", disabled=True, tooltip="What was appended since")
        self.log_text = widgets.Textarea(layout=widgets.Layout(width="100%", height="180px", display="none"))

        self.children = [
            self._style, self.header, self.error, self.deployments_html,
            widgets.HTML("<div class='endpoints-h'>Traffic</div>"), self.sliders_box,
            widgets.HBox([self.apply_button, self.reset_button, self.apply_reason]),
            widgets.HBox([self.rps_chart.figure, self.latency_chart.figure, self.errors_chart.figure]),
            widgets.HBox([self.counts_html, self.events_html]),
            widgets.HTML("<div class='endpoints-h'>Test</div>"),
            widgets.HBox([widgets.VBox([self.test_target, self.test_body, self.send_button]), self.test_result]),
            widgets.HTML("<div class='endpoints-h'>Logs</div>"),
            widgets.HBox([self.log_target, self.log_button, self.log_more]), self.log_text,
        ]
        self.apply_button.on_click(self.guard(lambda _: self.apply_traffic()))
        self.reset_button.on_click(self.guard(lambda _: self._build_sliders(force=True)))
        self.send_button.on_click(self.guard(lambda _: self.send_test()))
        self.log_button.on_click(self.guard(lambda _: self.show_log(more=False)))
        self.log_more.on_click(self.guard(lambda _: self.show_log(more=True)))

        self.guard(self._first_load)()
        self.refresher = Refresher(self._tick, interval, f"dashboard-{endpoint}", self.refresh_failed,
                                   self.refresh_succeeded)
        self.refresher.start()

    # --- data --------------------------------------------------------------------------------
    def _first_load(self) -> None:
        self.frame = endpoint_frame(self.ws, self.endpoint)
        # A dashboard opened late shows the recent past from the host's stats history.
        for dep, buckets in stats_history(self.ws, self.endpoint).items():
            self.points[dep] = deque(buckets, maxlen=HISTORY_POINTS)
        self._render()
        example = example_request(self.ws, self.endpoint)
        if example is not None:
            self.test_body.value = json.dumps(example, indent=1)

    def _tick(self) -> None:
        self.frame = endpoint_frame(self.ws, self.endpoint)
        now = time.time()
        for d in self.frame["deployments"]:
            self.points.setdefault(d["name"], deque(maxlen=HISTORY_POINTS)).append({"ts": now, **d})
        new, self._cursor = events_after(self.ws, self.endpoint, self._cursor)
        self.events = (self.events + new)[-50:]
        self._render()

    # --- rendering ---------------------------------------------------------------------------
    def _render(self) -> None:
        f = self.frame
        if not f:
            return
        self.header.value = (f"<div style='font-size:16px'>Endpoint <b>{esc(self.endpoint)}</b> "
                             f"<span class='endpoints-muted'>{esc(str(f.get('scoring_uri') or ''))} · auth "
                             f"{esc(str(f.get('auth_mode')))}</span></div>")
        rows = [{"deployment": d["name"], "state": d["state"], "model": d.get("model_version") or d.get("model"),
                 "instances": f"{d['instances_ready']}/{d['instances_total']} ready (of {d['instance_count']})",
                 "traffic": f"{d['traffic']}%", "mirror": f"{d['mirror']}%", "served": d["served"],
                 "mirrored": d["mirrored"]} for d in f["deployments"]]
        self.deployments_html.value = table_html(rows)
        names = tuple(d["name"] for d in f["deployments"])
        if names != self._deployment_names:
            self._build_sliders(force=True)
        self._charts()
        self.counts_html.value = ("<div class='endpoints-h'>Served / mirrored</div>" + table_html(
            [{"deployment": d["name"], "served": d["served"], "mirrored": d["mirrored"],
              "rps": f"{d['rps']:.1f}"} for d in f["deployments"]]))
        ev = [{"time": time.strftime("%H:%M:%S", time.localtime(e["ts"])), "deployment": e.get("deployment") or "",
               "reason": e.get("reason"), "message": e.get("message")} for e in self.events[-8:]][::-1]
        self.events_html.value = ("<div style='margin-left:24px'><div class='endpoints-h'>Events (scaling, rollout)</div>"
                                  + table_html(ev) + "</div>")

    def _charts(self) -> None:
        keep: set[str] = set()
        for i, d in enumerate(self.frame["deployments"]):
            pts = list(self.points.get(d["name"], []))
            if not pts:
                continue
            ts = [p["ts"] for p in pts]
            c = color_for(i)
            self.rps_chart.set(d["name"], ts, [p["rps"] for p in pts], c)
            self.latency_chart.set(f"{d['name']} p50", ts, [p["p50_ms"] for p in pts], c)
            self.latency_chart.set(f"{d['name']} p99", ts, [p["p99_ms"] for p in pts], c, dashed=True)
            self.errors_chart.set(d["name"], ts, [p["errors"] for p in pts], c)
            keep |= {d["name"], f"{d['name']} p50", f"{d['name']} p99"}
        for chart in (self.rps_chart, self.latency_chart, self.errors_chart):
            chart.drop_missing(keep)

    def _build_sliders(self, force: bool = False) -> None:
        deps = self.frame.get("deployments", [])
        self._deployment_names = tuple(d["name"] for d in deps)
        self.traffic_sliders, self.mirror_sliders, rows = {}, {}, []
        for d in deps:
            t = widgets.IntSlider(d["traffic"], min=0, max=100, description=f"{d['name']}",
                                  style={"description_width": "110px"}, layout=widgets.Layout(width="380px"))
            m = widgets.IntSlider(d["mirror"], min=0, max=MAX_MIRROR, description="mirror %",
                                  layout=widgets.Layout(width="300px"))
            t.observe(lambda _: self._check_traffic(), names="value")
            m.observe(lambda _: self._check_traffic(), names="value")
            self.traffic_sliders[d["name"]], self.mirror_sliders[d["name"]] = t, m
            rows.append(widgets.HBox([t, m]))
        self.sliders_box.children = rows
        names = [(f"deployment {n}", n) for n in self._deployment_names]
        self.test_target.options = [("the endpoint (traffic table)", ""), *names]
        keep = self.log_target.value
        self.log_target.options = list(self._deployment_names)
        self.log_target.value = keep if keep in self._deployment_names else (self._deployment_names or (None,))[0]
        self._check_traffic()

    def _values(self) -> tuple[dict[str, int], dict[str, int]]:
        return ({n: s.value for n, s in self.traffic_sliders.items()},
                {n: s.value for n, s in self.mirror_sliders.items() if s.value})

    def _check_traffic(self) -> str | None:
        traffic, mirror = self._values()
        for name, slider in self.mirror_sliders.items():
            # Mirroring is for a deployment without live traffic (its answers never reach callers).
            slider.disabled = bool(traffic.get(name))
        problem = traffic_problem(traffic, mirror)
        current = (self.frame.get("traffic") or {}, self.frame.get("mirror_traffic") or {})
        unchanged = ({k: v for k, v in traffic.items() if v} == {k: v for k, v in current[0].items() if v}
                     and mirror == {k: v for k, v in current[1].items() if v})
        self.apply_button.disabled = problem is not None or unchanged
        self.apply_reason.value = (f"<span class='endpoints-error'>{esc(problem)}</span>" if problem
                                   else "<span class='endpoints-muted'>as on the host</span>" if unchanged
                                   else "<span class='endpoints-ok'>ready to apply</span>")
        return problem

    # --- actions -------------------------------------------------------------------------------
    def apply_traffic(self) -> None:
        """Send the sliders' traffic and mirror shares to the host (refused until they sum to 100)."""
        problem = self._check_traffic()
        if problem:
            raise ValueError(problem)
        traffic, mirror = self._values()
        self.ws.online_endpoints.update_traffic(self.endpoint, {k: v for k, v in traffic.items() if v}, mirror_traffic=mirror)
        self.frame = endpoint_frame(self.ws, self.endpoint)
        self._render()
        self._build_sliders(force=True)

    def send_test(self) -> dict[str, Any]:
        """Send the test body to the endpoint (or the chosen deployment); show what came back."""
        text = self.test_body.value.strip()
        try:
            body = json.loads(text) if text else None
        except ValueError as err:
            raise ValueError(f"the test body is not valid JSON: {err}") from None
        if body is None:
            raise ValueError("the test body is empty: paste a request such as {\"dataframe_split\": ...}")
        res = invoke_raw(self.ws, self.endpoint, body, self.test_target.value or None)
        self.last_response = res
        colour = "endpoints-ok" if res["status"] < 400 else "endpoints-error"
        answer = json.dumps(res["body"], indent=1)[:4000] if not isinstance(res["body"], str) else res["body"][:4000]
        self.test_result.value = (
            f"<div style='margin-left:16px'><span class='{colour}'>HTTP {res['status']}</span> · served by "
            f"<b class='endpoints-served-by'>{esc(str(res['deployment'] or '-'))}</b> · "
            f"{res['latency_ms']:.1f} ms · request <code class='endpoints-request-id'>{esc(str(res.get('request_id') or '-'))}"
            f"</code><pre class='endpoints-pre'>{esc(answer)}</pre></div>")
        return res

    def show_log(self, more: bool = False) -> str:
        name = self.log_target.value
        if not name:
            raise ValueError("no deployment to show the log of")
        text, offset, instance = log_tail(self.ws, self.endpoint, name, self._log_offset if more else None,
                                          self._log_instance if more else None)
        self._log_offset, self._log_instance = offset, instance
        self.log_text.value = (self.log_text.value + text) if more else text
        self.log_text.layout.display = None
        self.log_more.disabled = offset is None
        return text

    def close(self) -> None:
        self.refresher.stop()
        super().close()
