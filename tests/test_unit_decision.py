"""The advisor's decision rules on hand-built profiles and options (no model is profiled).

The rules (toolkit/advisor/decision.py), first that applies decides: latency -> batch_size ->
frequency -> cost (a near-tie broken by frequency) -> the only feasible option -> the closer
one, with a warning.  Each rule is checked on options built by hand, where the test sets exactly
the facts the rule reads, and then end to end through ``evaluate`` on a profile with known
numbers.
"""

from __future__ import annotations

import pytest

from test_advisor_sizing import M, linear_profile
from toolkit.advisor import QUESTIONS, Assumptions, BatchOption, OnlineOption, Workload, evaluate, what_would_change
from toolkit.advisor.decision import _rule

ON_ARRIVAL = Workload(model=M, frequency="per request", peak_rps=5, latency_ms=500)
SCHEDULED = Workload(model=M, frequency="weekly", rows_per_run=10_000, deadline="12h")
A = Assumptions()


def online(feasible: bool = True, cost: float = 100.0, blocker: str | None = None, ttr: float | None = 0.1) -> OnlineOption:
    return OnlineOption(feasible=feasible, blocker=blocker, cost_per_month=cost, time_to_result_s=ttr,
                        why_not="" if feasible else f"online: {blocker}")


def batch(feasible: bool = True, cost: float = 10.0, blocker: str | None = None, ttr: float | None = 60.0) -> BatchOption:
    return BatchOption(feasible=feasible, blocker=blocker, cost_per_month=cost, time_to_result_s=ttr,
                       why_not="" if feasible else f"batch: {blocker}")


def decide(w: Workload, on: OnlineOption, ba: BatchOption) -> tuple[str, str, list[str]]:
    return _rule(w, on, ba, A)


def test_rule_1_latency_beats_schedule_and_cost() -> None:
    # Batch cannot be in time; online can: online, even for a schedule and though batch is cheaper.
    for w in (ON_ARRIVAL, SCHEDULED):
        assert decide(w, online(cost=1000), batch(False, cost=1, blocker="latency")) == ("online", "latency", [])


def test_rule_2_batch_size_beats_schedule_and_cost() -> None:
    # A request too big for online while batch is in time: batch, whatever online would cost.
    assert decide(ON_ARRIVAL, online(False, cost=1, blocker="batch_size"), batch(cost=1000)) == (
        "batch", "batch_size", [])


def test_rule_3_a_schedule_goes_to_batch_when_it_is_in_time() -> None:
    assert decide(SCHEDULED, online(cost=1), batch(cost=1000)) == ("batch", "frequency", [])


def test_rule_4_cost_decides_when_both_meet_the_need_and_a_near_tie_goes_by_frequency() -> None:
    assert decide(ON_ARRIVAL, online(cost=100), batch(cost=10)) == ("batch", "cost", [])
    assert decide(ON_ARRIVAL, online(cost=10), batch(cost=100)) == ("online", "cost", [])
    # Within tie_margin (15%) of each other: arrivals on demand -> online, decided by frequency.
    near = 100 * (1 - A.tie_margin) + 0.01
    assert decide(ON_ARRIVAL, online(cost=100), batch(cost=near)) == ("online", "frequency", [])
    assert decide(ON_ARRIVAL, online(cost=100), batch(cost=near - 0.02)) == ("batch", "cost", [])


def test_rule_5_the_only_feasible_option_named_by_what_rules_out_the_other() -> None:
    assert decide(ON_ARRIVAL, online(), batch(False, blocker="cost")) == ("online", "cost", [])
    assert decide(ON_ARRIVAL, online(False, blocker="latency"), batch()) == ("batch", "latency", [])
    assert decide(ON_ARRIVAL, online(False, blocker="cost"), batch()) == ("batch", "cost", [])


def test_rule_6_neither_feasible_picks_the_closer_and_warns() -> None:
    rec, q, warnings = decide(ON_ARRIVAL, online(False, blocker="latency", ttr=2.0),
                              batch(False, blocker="cost", ttr=600.0))
    assert (rec, q) == ("online", "latency")
    assert warnings == ["neither option meets the need: online: online: latency; batch: batch: cost"]
    rec, q, _ = decide(ON_ARRIVAL, online(False, blocker="latency", ttr=None), batch(False, blocker="cost", ttr=600.0))
    assert (rec, q) == ("batch", "latency")  # online has no time at all: batch comes closer
    # Too big for one request: batch, whatever the times.
    rec, q, _ = decide(ON_ARRIVAL, online(False, blocker="batch_size", ttr=0.1), batch(False, blocker="latency"))
    assert (rec, q) == ("batch", "batch_size")


def test_evaluate_gives_one_reason_per_question_and_the_deciding_one_first() -> None:
    p = linear_profile(rss=350)
    for w, expected in ((ON_ARRIVAL, ("online", "latency")), (SCHEDULED, ("batch", "frequency"))):
        ev = evaluate(p, w)
        assert (ev.recommendation, ev.deciding_question) == expected
        assert sorted(r.question for r in ev.reasons) == sorted(QUESTIONS)
        assert [r.question for r in ev.reasons if r.deciding] == [ev.deciding_question] == [ev.reasons[0].question]
        assert ev.chosen is ev.option(ev.recommendation) and ev.chosen.feasible
        assert not ev.warnings


def test_an_incomplete_profile_is_a_warning_not_a_different_answer() -> None:
    complete = evaluate(linear_profile(), SCHEDULED)
    partial = evaluate(linear_profile().model_copy(update={"complete": False, "note": "timed out"}), SCHEDULED)
    assert partial.recommendation == complete.recommendation
    assert any("incomplete (timed out)" in w for w in partial.warnings)


def test_what_would_change_an_online_answer_is_a_longer_wait() -> None:
    p, w = linear_profile(rss=350), ON_ARRIVAL
    current = evaluate(p, w)
    changes = what_would_change(p, w, current)
    first = changes[0]
    assert first.recommendation == "batch" and first.text.startswith("If results may wait")
    assert first.change["latency_ms"] is None and first.change["deadline_s"] > w.need_s
    # Re-deciding with that change gives what the line says.
    flipped = evaluate(p, w.with_changes(**first.change))
    assert (flipped.recommendation, flipped.deciding_question) == (first.recommendation, first.deciding_question)
    assert any(c.change.get("peak_rps") == w.peak * 10 for c in changes)


def test_what_would_change_a_batch_answer_is_a_tighter_deadline() -> None:
    p, w = linear_profile(rss=350), SCHEDULED
    current = evaluate(p, w)
    changes = what_would_change(p, w, current)
    online_lines = [c for c in changes if c.recommendation == "online"]
    assert online_lines and online_lines[0].text.startswith("If results were needed within a second")
    assert online_lines[0].cost_change_pct is not None and online_lines[0].cost_change_pct > 0
    bigger = [c for c in changes if c.change.get("rows_per_run") == w.rows_per_run * 10]
    assert bigger and "10x the rows" in bigger[0].text


@pytest.mark.parametrize("assumptions, expected", [
    (Assumptions(), ("batch", "cost")),
    (Assumptions(tie_margin=1.0), ("online", "frequency")),  # every difference counts as a tie
])
def test_tie_margin_is_the_assumption_that_moves_the_cost_rule(assumptions: Assumptions, expected: tuple[str, str]) -> None:
    p = linear_profile(rss=350)
    w = ON_ARRIVAL.with_changes(peak_rps=1, latency_ms=None, deadline_s=3600)  # an hour: batch far cheaper
    ev = evaluate(p, w, assumptions)
    assert (ev.recommendation, ev.deciding_question) == expected
