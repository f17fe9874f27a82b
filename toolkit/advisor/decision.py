"""The decision: online or batch, which of the mission's four questions decided, and why.

Rules, in order (the first that applies decides):

1. latency: results are needed sooner than any batch job can deliver them (a job's own overhead
   plus, from zero workers, the measured start-up) while an online endpoint meets the target
   -> online.
2. batch_size: one request carries more rows than an online request may (payload limit or
   request timeout) while a batch run meets the deadline -> batch.
3. frequency: predictions are consumed at set times (a schedule) and a batch run meets the
   deadline -> batch.
4. cost: both options meet the need -> the cheaper per month; within ``tie_margin`` of each other
   the frequency breaks the tie (on arrival -> online, on a schedule -> batch).
5. Only one option meets the need -> that one, decided by the question that rules the other out.
   Neither does -> the one that comes closer, with a warning.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from .profile import ModelProfile
from .sizing import Assumptions, BatchOption, OnlineOption, Question, size_batch, size_online
from .workload import Workload, format_duration

__all__ = ["QUESTIONS", "Reason", "Change", "Evaluation", "evaluate", "what_would_change"]

Option = Literal["online", "batch"]

QUESTIONS: dict[str, str] = {
    "frequency": "How often are predictions needed?",
    "latency": "How soon are the results needed?",
    "batch_size": "Do predictions come one at a time or in batches?",
    "cost": "How much compute does the model need, and what does it cost?",
}


class Reason(BaseModel):
    question: Question
    text: str
    favours: Option | None = None
    deciding: bool = False


class Change(BaseModel):
    """One 'what would change the answer' line, computed by re-running the decision."""

    change: dict[str, object] = Field(description="The workload fields changed.")
    text: str
    recommendation: Option
    deciding_question: Question
    cost_per_month: float | None = None
    cost_change_pct: float | None = Field(None, description="Against the cost of today's recommendation (negative: cheaper).")


class Evaluation(BaseModel):
    recommendation: Option
    deciding_question: Question
    online: OnlineOption
    batch: BatchOption
    reasons: list[Reason]
    warnings: list[str] = Field(default_factory=list)

    def option(self, kind: Option) -> OnlineOption | BatchOption:
        return self.online if kind == "online" else self.batch

    @property
    def chosen(self) -> OnlineOption | BatchOption:
        return self.option(self.recommendation)


def _pct(new: float, old: float) -> float | None:
    return None if old <= 0 else round(100.0 * (new - old) / old, 1)


def _rule(w: Workload, on: OnlineOption, ba: BatchOption, a: Assumptions) -> tuple[Option, Question, list[str]]:
    warnings: list[str] = []
    if not ba.feasible and ba.blocker == "latency" and on.feasible:
        return "online", "latency", warnings
    if not on.feasible and on.blocker == "batch_size" and ba.feasible:
        return "batch", "batch_size", warnings
    if w.frequency.scheduled and ba.feasible:
        return "batch", "frequency", warnings
    if on.feasible and ba.feasible:
        hi = max(on.cost_per_month, ba.cost_per_month)
        if hi > 0 and abs(on.cost_per_month - ba.cost_per_month) / hi <= a.tie_margin:
            return ("batch" if w.frequency.scheduled else "online"), "frequency", warnings
        return ("online" if on.cost_per_month < ba.cost_per_month else "batch"), "cost", warnings
    if on.feasible:
        return "online", ba.blocker or "latency", warnings
    if ba.feasible:
        return "batch", on.blocker or "latency", warnings
    warnings.append(f"neither option meets the need: online: {on.why_not}; batch: {ba.why_not}")
    if on.blocker == "batch_size":
        return "batch", "batch_size", warnings
    on_t = on.time_to_result_s if on.time_to_result_s is not None else math.inf
    ba_t = ba.time_to_result_s if ba.time_to_result_s is not None else math.inf
    return ("online" if on_t <= ba_t else "batch"), "latency", warnings


def _reasons(w: Workload, p: ModelProfile, on: OnlineOption, ba: BatchOption, rec: Option, q: Question) -> list[Reason]:
    cur = w.prices.format
    out: list[Reason] = []

    # frequency
    if w.frequency.scheduled:
        runs = w.frequency.runs_per_month or 0
        out.append(Reason(question="frequency", favours="batch", text=(
            f"Predictions are needed {w.frequency} (about {f'{runs:,.0f}' if runs >= 10 else f'{runs:.1f}'} runs a month); "
            "between runs nothing has to be running.")))
    else:
        out.append(Reason(question="frequency", favours="online", text=(
            f"Predictions are needed as each event arrives (peak {w.peak:g}/s, average {w.average:g}/s): "
            "requests come at any moment, which is what an always-on endpoint is for.")))

    # latency
    need = w.describe_need()
    startup = (f" ({format_duration(ba.startup_s)} of it starting workers from zero: imports {p.import_s:.1f} s and "
               f"model load {p.load_s:.1f} s, measured)") if ba.startup_s else ""
    if not ba.feasible and ba.blocker == "latency":
        online_part = (f"An online endpoint answers in about {_ms(on.latency_ms)} (p{on.percentile:g} at the peak rate)"
                       if on.feasible else f"Online cannot either: {on.why_not}")
        out.append(Reason(question="latency", favours="online" if on.feasible else None, text=(
            f"Results are needed {need}. {online_part}; a batch job needs at least "
            f"{format_duration(ba.expected_duration_s or 0)}{startup}.")))
    elif not on.feasible and on.blocker == "latency":
        out.append(Reason(question="latency", favours="batch" if ba.feasible else None, text=(
            f"Results are needed {need}; online cannot deliver it: {on.why_not}. A batch run takes about "
            f"{format_duration(ba.expected_duration_s or 0)}.")))
    elif not on.feasible:
        out.append(Reason(question="latency", favours=None, text=(
            f"Results are needed {need}; a batch run of {ba.rows_per_run:,} rows takes about "
            f"{format_duration(ba.expected_duration_s or 0)}, in time.")))
    else:
        on_part = (f"online answers in about {_ms(on.latency_ms)}" if on.expected_duration_s is None
                   else f"online scores a run in about {format_duration(on.expected_duration_s)}")
        ba_part = (f"a batch run of {ba.rows_per_run:,} rows takes about {format_duration(ba.expected_duration_s or 0)}"
                   f"{' including start-up from zero workers' if ba.startup_s else ''}")
        out.append(Reason(question="latency", favours=None, text=(
            f"Results may wait: they are needed {need}; {ba_part} and {on_part}, so both meet it.")))

    # batch size
    best = p.best_rows
    gain = p.rows_per_s(best) / p.rows_per_s(1) if p.latency_ms else 1.0
    if w.frequency.scheduled:
        m = ba.mini_batch_rows
        out.append(Reason(question="batch_size", favours="batch", text=(
            f"Each run scores {w.rows_per_run:,} rows at once: in mini-batches of {m:,} rows the model does "
            f"{p.rows_per_s(m):,.0f} rows/s per core (measured), {gain:,.0f}x what one row at a time gives.")))
    elif not on.feasible and on.blocker == "batch_size":
        out.append(Reason(question="batch_size", favours="batch", text=(
            f"Each request carries {w.rows_per_request:,} rows, too many for one online request: {on.why_not}.")))
    else:
        r = w.rows_per_request
        out.append(Reason(question="batch_size", favours="online", text=(
            f"Predictions come {'one row' if r == 1 else f'{r:,} rows'} at a time: the model predicts that in "
            f"{_ms(p.latency_at(r))} (measured; {best:,} rows take {_ms(p.latency_at(best))}), and the endpoint "
            f"coalesces requests that arrive together into micro-batches of up to {on.max_batch_size} rows.")))

    # cost
    mem = f"The model needs about {p.rss_mib:,.0f} MiB resident and {p.startup_s:.1f} s to start. "
    on_cost = (f"online {cur(on.cost_per_month)}/month ({on.instance_count} x {on.instance_type}, up "
               f"{w.hours_per_day:g} h a day)" if on.feasible else "online does not meet the need")
    ba_cost = (f"batch {cur(ba.cost_per_run)} a run, {cur(ba.cost_per_month)}/month "
               f"({'workers stay up' if ba.warm else 'paid only while running; the cluster scales to zero'})"
               if ba.feasible else "batch does not meet the need")
    favours: Option | None = None
    tail = ""
    if on.feasible and ba.feasible:
        favours = "online" if on.cost_per_month < ba.cost_per_month else "batch"
        lo, hi = sorted((on.cost_per_month, ba.cost_per_month))
        if hi > 0 and lo / hi > 0.005:
            tail = f" {favours.capitalize()} costs {100 * (1 - lo / hi):.0f}% less."
        elif hi > 0:
            tail = f" {favours.capitalize()} is {hi / max(lo, 1e-12):,.0f} times cheaper."
    elif on.feasible or ba.feasible:
        if (on.blocker if not on.feasible else ba.blocker) == "cost":
            favours = "online" if on.feasible else "batch"
    out.append(Reason(question="cost", favours=favours, text=f"{mem}Cost: {on_cost}; {ba_cost}.{tail}"))

    for reason in out:
        reason.deciding = reason.question == q
    if q == "frequency" and not w.frequency.scheduled:
        # A near-tie on cost broken by how predictions arrive.
        for reason in out:
            if reason.question == "frequency":
                reason.text += " Costs are within a few percent of each other, so this decides."
    return sorted(out, key=lambda r: not r.deciding)


def _ms(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def evaluate(profile: ModelProfile, workload: Workload, assumptions: Assumptions | None = None) -> Evaluation:
    """Size both options and apply the rules."""
    a = assumptions or Assumptions()
    on = size_online(profile, workload, a)
    ba = size_batch(profile, workload, a)
    rec, q, warnings = _rule(workload, on, ba, a)
    if not profile.complete:
        warnings.append(f"the model profile is incomplete ({profile.note}); larger batch sizes are extrapolated")
    return Evaluation(recommendation=rec, deciding_question=q, online=on, batch=ba,
                      reasons=_reasons(workload, profile, on, ba, rec, q), warnings=warnings)


_LOOSER = (10.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 12 * 3600.0, 86400.0, 7 * 86400.0)


def what_would_change(profile: ModelProfile, workload: Workload, current: Evaluation,
                      assumptions: Assumptions | None = None) -> list[Change]:
    """Small changes to the workload, re-decided: the ones that flip the answer, and how the
    recommended option's size and cost move with the load."""
    a = assumptions or Assumptions()
    cur = workload.prices.format
    base_cost = current.chosen.cost_per_month if current.chosen.feasible else 0.0
    out: list[Change] = []

    def run(**changes: object) -> Evaluation | None:
        try:
            return evaluate(profile, workload.with_changes(**changes), a)
        except Exception:  # a perturbation the workload rules reject is simply not offered
            return None

    def add(changes: dict[str, object], ev: Evaluation, text: str) -> None:
        cost = ev.chosen.cost_per_month if ev.chosen.feasible else None
        out.append(Change(change=changes, text=text, recommendation=ev.recommendation,
                          deciding_question=ev.deciding_question, cost_per_month=cost,
                          cost_change_pct=_pct(cost, base_cost) if cost is not None and base_cost else None))

    need = workload.need_s
    if current.recommendation == "online":
        # How long would results have to be allowed to wait for batch to win?
        for wait in _LOOSER:
            if wait <= need:
                continue
            changes = {"latency_ms": None, "deadline_s": wait}
            ev = run(**changes)
            if ev is not None and ev.recommendation == "batch":
                saving = _pct(ev.batch.cost_per_month, current.online.cost_per_month) if current.online.feasible else None
                how = (f"batch costs {-saving:.0f}% less ({cur(ev.batch.cost_per_month)} vs "
                       f"{cur(current.online.cost_per_month)} a month)" if saving is not None and saving < 0
                       else f"batch would be recommended ({QUESTIONS[ev.deciding_question].lower().rstrip('?')} "
                            f"decides), at {cur(ev.batch.cost_per_month)} a month")
                add(changes, ev, f"If results may wait {format_duration(wait)}, {how}.")
                break
        if not workload.frequency.scheduled and current.online.feasible:
            peak = workload.peak * 10
            changes = {"peak_rps": peak, "avg_rps": min(workload.average, peak)}
            ev = run(**changes)
            if ev is not None:
                o = ev.online
                text = (f"At 10x the peak rate ({peak:g}/s), online needs {o.instance_count} x {o.instance_type} "
                        f"({cur(o.cost_per_month)}/month)." if o.feasible
                        else f"At 10x the peak rate ({peak:g}/s), online no longer meets the target: {o.why_not}.")
                if ev.recommendation != "online":
                    text += f" The advice becomes {ev.recommendation}."
                add(changes, ev, text)
        if workload.hours_per_day > 8 and current.online.feasible:
            changes = {"hours_per_day": 8}
            ev = run(**changes)
            if ev is not None:
                add(changes, ev, f"If the endpoint only had to be up 8 hours a day, online would cost "
                                 f"{cur(ev.online.cost_per_month)}/month.")
    else:
        # How soon would results have to be needed for online to be the answer?
        for target_ms, label in ((1000.0, "within a second"), (60_000.0, "within a minute")):
            if target_ms / 1000 >= need:
                continue
            changes = {"latency_ms": target_ms, "deadline_s": None}
            if not workload.frequency.scheduled:
                changes.update(peak_rps=workload.peak, avg_rps=workload.average)
            ev = run(**changes)
            # An online option that cannot meet the tighter target is no answer to offer.
            if ev is not None and ev.recommendation == "online" and ev.online.feasible:
                more = _pct(ev.online.cost_per_month, current.batch.cost_per_month) if current.batch.feasible else None
                how = (f"{more / 100 + 1:,.0f}x the cost" if more is not None and more > 100 else
                       f"{more:+.0f}% cost" if more is not None else "")
                add(changes, ev, f"If results were needed {label}, only an online endpoint would do: "
                                 f"{ev.online.instance_count} x {ev.online.instance_type} at "
                                 f"{cur(ev.online.cost_per_month)}/month{f' ({how})' if how else ''}.")
                break
        if current.batch.feasible and current.batch.expected_duration_s:
            b = current.batch
            floor = a.job_overhead_s + b.startup_s
            text = (f"A deadline shorter than about {format_duration(b.expected_duration_s)} (the predicted run) needs "
                    f"more workers, and below about {format_duration(floor)} (job overhead and start-up from zero) "
                    "an online endpoint." if b.expected_duration_s - floor > 1.0 else
                    f"A deadline shorter than about {format_duration(b.expected_duration_s)} (mostly job overhead and "
                    "start-up from zero workers) would need an online endpoint.")
            out.append(Change(change={"deadline_s": b.expected_duration_s}, recommendation="batch",
                              deciding_question="latency", cost_per_month=b.cost_per_month, cost_change_pct=0.0, text=text))
        if workload.frequency.scheduled and workload.rows_per_run:
            rows = workload.rows_per_run * 10
            changes = {"rows_per_run": rows}
            ev = run(**changes)
            if ev is not None:
                b = ev.batch
                text = (f"With 10x the rows ({rows:,} a run), batch takes about {format_duration(b.expected_duration_s or 0)} "
                        f"on {b.workers} worker(s), {cur(b.cost_per_run)} a run." if b.feasible
                        else f"With 10x the rows ({rows:,} a run), batch misses the deadline: {b.why_not}.")
                add(changes, ev, text)
    return out
