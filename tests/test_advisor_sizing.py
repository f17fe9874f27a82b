"""The sizing math on a profile with known numbers (the scenario and reality tests use real ones)."""

from __future__ import annotations

import math

import pytest

from toolkit.advisor import Assumptions, ModelProfile, Workload, evaluate
from toolkit.advisor.queueing import erlang_c, wait_quantile
from toolkit.advisor.sizing import batch_duration, online_latency, size_batch, size_online
from toolkit.specs import INSTANCE_TYPES

M = "models:/demo/1"


def linear_profile(fixed_ms: float = 5.0, per_row_ms: float = 0.01, rss: float = 250.0, **kw) -> ModelProfile:
    """S(b) = fixed + per_row * b, exactly; 300 MiB-ish process; 3 s cold start."""
    sizes = (1, 8, 64, 512, 4096)
    return ModelProfile(
        model_uri=M, name="demo", version="1", cpu_count=2, import_s=2.0, load_s=1.0, baseline_rss_mib=150,
        loaded_rss_mib=rss, rss_mib=rss + 5, rss_mib_by_rows={s: rss + s / 1000 for s in sizes},
        latency_ms={s: fixed_ms + per_row_ms * s for s in sizes}, bytes_per_row=60.0, complete=True, **kw,
    )


def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)          # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)        # textbook value
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert erlang_c(2, 2.0) == 1.0 and erlang_c(4, 0.0) == 0.0
    # M/M/1: P(W > t) = rho * exp(-(mu - lambda) t)  ->  t_q = ln(rho / (1 - q)) / (mu - lambda)
    assert wait_quantile(1, 5.0, 10.0, 0.99) == pytest.approx(math.log(0.5 / 0.01) / 5.0)
    assert wait_quantile(1, 1.0, 10.0, 0.5) == 0.0          # 90% never wait: the median wait is zero
    assert math.isinf(wait_quantile(1, 10.0, 10.0, 0.99))


def test_profile_interpolates_and_extrapolates_safely():
    p = linear_profile()
    assert p.latency_at(1) == pytest.approx(5.01)
    assert p.latency_at(100) == pytest.approx(6.0)
    assert p.latency_at(100_000) == pytest.approx(5 + 0.01 * 100_000)   # along the last segment
    assert p.best_rows == 4096 and p.rss_at(8) == pytest.approx(250.008)
    assert p.rss_at(1_000_000) > p.rss_at(4096)


def test_micro_batching_raises_capacity():
    """Past one instance's capacity without batching (1000/S(1) ~ 166 req/s with request CPU), batching
    still keeps latency bounded: the fixed point k = lambda * busy(k) exists."""
    p, a, small = linear_profile(), Assumptions(request_cpu_ms=1.0, network_ms=2.0), INSTANCE_TYPES["cpu-small"]
    _, p99_unbatched, _ = online_latency(p, 300.0, 1, 1, small, 1, 0.99, a)
    _, p99_batched, util = online_latency(p, 300.0, 1, 1, small, 64, 0.99, a)
    assert math.isinf(p99_unbatched) and p99_batched < 50 and util < 0.5


def test_online_count_grows_with_the_rate_and_cost_with_the_count():
    p = linear_profile(fixed_ms=20.0)
    counts, costs = [], []
    for rate in (1, 50, 500, 2000):
        opt = size_online(p, Workload(model=M, frequency="per request", peak_rps=rate, latency_ms=300))
        assert opt.feasible and opt.latency_ms <= 300 and opt.utilization <= Assumptions().max_utilization
        counts.append(INSTANCE_TYPES[opt.instance_type].cores * opt.instance_count)
        costs.append(opt.cost_per_month)
    assert counts == sorted(counts) and costs == sorted(costs) and costs[-1] > costs[0]


def test_online_autoscale_between_average_and_peak():
    p = linear_profile(fixed_ms=20.0)
    opt = size_online(p, Workload(model=M, frequency="per request", peak_rps=2000, avg_rps=20, latency_ms=300))
    assert opt.min_instances < opt.instance_count and opt.cost_per_month_min < opt.cost_per_month


def test_online_infeasible_latency_and_batch_size():
    p = linear_profile(fixed_ms=500.0)
    slow = size_online(p, Workload(model=M, frequency="per request", peak_rps=1, latency_ms=100))
    assert not slow.feasible and slow.blocker == "latency" and "idle instance" in slow.why_not
    huge = size_online(linear_profile(), Workload(model=M, frequency="per request", peak_rps=1, rows_per_request=1_000_000,
                                                  latency_ms=60_000))
    assert not huge.feasible and huge.blocker == "batch_size" and "MiB" in huge.why_not


def test_memory_rules_out_small_types():
    opt = size_online(linear_profile(rss=700), Workload(model=M, frequency="per request", peak_rps=1, latency_ms=500))
    assert INSTANCE_TYPES[opt.instance_type].memory_gib * 1024 >= 700 * Assumptions().memory_headroom
    too_big = size_online(linear_profile(rss=40_000), Workload(model=M, frequency="per request", peak_rps=1, latency_ms=500))
    assert not too_big.feasible and too_big.blocker == "cost"


def test_batch_duration_formula_and_startup_from_zero():
    p, a = linear_profile(), Assumptions()
    per_task = p.latency_at(1000) / 1000 + a.task_overhead_s + 1000 * a.io_ms_per_row / 1000
    cold = batch_duration(p, 10_000, 1000, 3, a)
    assert cold == pytest.approx(a.job_overhead_s + a.worker_start_s + p.startup_s + 4 * per_task)
    assert batch_duration(p, 10_000, 1000, 3, a, warm=True) == pytest.approx(cold - a.worker_start_s - p.startup_s)


def test_batch_meets_the_deadline_with_the_fewest_workers():
    p = linear_profile(per_row_ms=0.5)  # 2,000 rows/s per core
    w = Workload(model=M, frequency="daily", rows_per_run=200_000, deadline="60s", max_workers=16)
    opt = size_batch(p, w)
    assert opt.feasible and opt.expected_duration_s <= 60 and not opt.warm
    assert opt.workers > 1  # 100 s of work on one core
    fewer = w.with_changes(max_workers=opt.workers - 1)
    assert size_batch(p, fewer).feasible is False or size_batch(p, fewer).cost_per_run >= opt.cost_per_run
    assert INSTANCE_TYPES[opt.instance_type].cores >= 1  # a worker process is a whole core
    # cost is the workers for the whole run, start-up included; a month has ~30 daily runs
    assert opt.cost_per_month == pytest.approx(opt.cost_per_run * 730 / 24)
    short = size_batch(p, w.with_changes(deadline_s=3, max_workers=1000))
    assert not short.feasible and short.blocker == "latency" and "from zero" in short.why_not


def test_frequent_runs_keep_workers_warm():
    p = linear_profile()
    opt = size_batch(p, Workload(model=M, frequency="every 30 seconds", rows_per_run=100, deadline="30s"))
    assert opt.warm and opt.startup_s == 0 and opt.cost_per_month == pytest.approx(
        opt.workers * Workload(model=M, frequency="hourly", rows_per_run=1).prices.hourly(
            INSTANCE_TYPES[opt.instance_type].cores, INSTANCE_TYPES[opt.instance_type].memory_gib) * 730)


def test_prices_scale_costs_linearly():
    p = linear_profile()
    w = Workload(model=M, frequency="per request", peak_rps=10, latency_ms=200)
    dear = w.with_changes(prices={"core_hour": w.prices.core_hour * 2, "gib_hour": w.prices.gib_hour * 2})
    assert size_online(p, dear).cost_per_month == pytest.approx(2 * size_online(p, w).cost_per_month)


def test_rules_latency_then_near_tie_then_cost():
    p = linear_profile(rss=350)  # too big for cpu-nano: online and batch both run on cpu-small
    w = Workload(model=M, frequency="per request", peak_rps=1, latency_ms=1000)
    ev = evaluate(p, w)
    assert ev.recommendation == "online" and ev.deciding_question == "latency"
    # Results may wait 1 minute: runs every 30 s keep one warm worker up, which costs about what one
    # always-on instance costs: a near-tie, broken by how predictions arrive (on arrival -> online).
    tie = evaluate(p, w.with_changes(latency_ms=None, deadline_s=60))
    assert tie.batch.feasible and tie.batch.warm
    assert tie.batch.cost_per_month == pytest.approx(tie.online.cost_per_month, rel=0.15)
    assert (tie.recommendation, tie.deciding_question) == ("online", "frequency")
    # An hour: runs every 30 minutes from zero workers cost a fraction: cost decides.
    hour = evaluate(p, w.with_changes(latency_ms=None, deadline_s=3600))
    assert (hour.recommendation, hour.deciding_question) == ("batch", "cost")
    assert hour.batch.cost_per_month < 0.1 * hour.online.cost_per_month
    assert [r.question for r in hour.reasons if r.deciding] == ["cost"]
