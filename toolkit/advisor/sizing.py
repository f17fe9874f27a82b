"""Sizing and cost of both options, from a measured :class:`ModelProfile` and a :class:`Workload`.

Online (always on): each instance runs one predict at a time (single-threaded, as profiled) and
coalesces the requests that queued meanwhile into the next predict (server-side micro-batching).
For a candidate (instance type, instance count, max batch size) we estimate the latency quantile
at the peak rate two ways and keep the better one, because micro-batching behaves like the first
at low load and like the second under load:

* Erlang C (M/M/c): P(wait > t) = C(c, a) * exp(-(c*mu - lambda) * t) with service time S(r) for
  one request of r rows.  Exponential service overstates the waiting of a near-constant predict
  time, so this errs on the safe side.
* Batching fixed point: the requests that arrive while a batch is predicted form the next batch,
  k = lambda_i * S(k*r); a request waits at most for the batch in flight and then rides in the
  next one, whose size has Poisson spread: p_q ~ S(k*r) + S(k_q*r), k_q = k + z_q*sqrt(k).

The cheapest candidate that meets the target at the peak rate, with utilisation (load over the
instance's best throughput) under ``max_utilization``, wins; cost is the instances' cores and
memory for every hour the endpoint is up.

Batch (pay while running): a run of N rows is split into mini-batches of m rows over w workers,
each worker one single-threaded process (max_concurrency_per_instance 1).  Duration = job
overhead + start-up from zero workers (process start + imports + model load, as measured) +
ceil(ceil(N/m)/w) waves of (S(m) + per-mini-batch overhead + I/O per row).  The cheapest
(type, m, w) that finishes within the deadline and fits memory wins; cost is w workers for the
whole duration.  When runs come more often than the cluster's idle timeout, the workers never
scale to zero: no start-up per run, but paid around the clock.
"""

from __future__ import annotations

import math
import os
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..specs import INSTANCE_TYPES, Batching, InstanceType, RequestSettings
from .profile import ModelProfile
from .queueing import wait_quantile
from .workload import HOURS_PER_MONTH, Prices, Workload, format_duration

__all__ = [
    "Assumptions",
    "OnlineOption",
    "BatchOption",
    "Question",
    "online_latency",
    "size_online",
    "size_batch",
    "batch_duration",
]

Question = Literal["frequency", "latency", "batch_size", "cost"]
_INF = float("inf")


class Assumptions(BaseModel):
    """The numbers the sizing takes as given rather than measured (documented in docs/advisor.md)."""

    model_config = ConfigDict(extra="forbid")

    network_ms: float = Field(10.0, ge=0, description="Per request, latency only: client encode/decode and the HTTP hop through the gateway to an instance.")
    request_cpu_ms: float = Field(2.0, ge=0, description="Per request, on the instance's CPU: parse the body, build the frame, encode the answer.")
    request_cpu_ms_per_row: float = Field(0.01, ge=0, description="Per row of a request, on the instance's CPU: JSON (de)serialisation.")
    max_utilization: float = Field(0.7, gt=0, le=1, description="Load over best throughput an instance may run at (deployment default target_utilization_percentage 70).")
    memory_headroom: float = Field(1.25, ge=1, description="Peak RSS times this must fit the instance's memory.")
    max_instances: int = Field(100, ge=1, le=100)
    batch_size_choices: tuple[int, ...] = (64, 256, 1024)
    worker_start_s: float = Field(3.0, ge=0, description="A Dask worker process starting, before it loads the model.")
    job_overhead_s: float = Field(3.0, ge=0, description="Per job: submit, plan mini-batches, start the local scheduler if needed, collect and write outputs.")
    task_overhead_s: float = Field(0.05, ge=0, description="Per mini-batch: schedule it, read its rows, write its predictions.")
    io_ms_per_row: float = Field(0.005, ge=0, description="Reading CSV and writing predictions, per row.")
    cluster_idle_s: float = Field(60.0, ge=0, description="Idle time after which the local cluster retires its workers (the batch service's default).")
    instance_overhead_mib: float = Field(60.0, ge=0, description="Memory the online instance's server adds to the model's process.")
    # Capped at 65,536 rows so retries and progress stay fine-grained on big runs.
    mini_batch_choices: tuple[int, ...] = (64, 256, 1024, 4096, 16384, 65536)
    tie_margin: float = Field(0.15, ge=0, le=1, description="Costs within this fraction are a near-tie.")


class OnlineOption(BaseModel):
    kind: Literal["online"] = "online"
    feasible: bool
    blocker: Question | None = Field(None, description="Which question rules this option out.")
    why_not: str = ""
    instance_type: str = "cpu-small"
    instance_count: int = 1
    min_instances: int = 1
    max_batch_size: int = 64
    rate_rps: float = 0.0
    rows_per_request: int = 1
    percentile: float = 99.0
    latency_p50_ms: float | None = None
    latency_ms: float | None = Field(None, description="Expected latency at the percentile, at the peak rate.")
    utilization: float | None = None
    expected_duration_s: float | None = Field(None, description="For scheduled runs sent through the endpoint.")
    time_to_result_s: float | None = None
    hours_per_day: float = 24.0
    cost_per_hour: float = 0.0
    cost_per_month: float = 0.0
    cost_per_month_min: float | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def configuration(self) -> str:
        scale = f" (autoscale {self.min_instances}-{self.instance_count})" if self.min_instances < self.instance_count else ""
        return f"{self.instance_count} x {self.instance_type}{scale}, micro-batches up to {self.max_batch_size} rows"

    @property
    def expected(self) -> str:
        if self.expected_duration_s is not None:
            return f"run in ~{format_duration(self.expected_duration_s)}, requests p{self.percentile:g} {_ms(self.latency_ms)}"
        return f"p{self.percentile:g} {_ms(self.latency_ms)} at {self.rate_rps:g} req/s"


class BatchOption(BaseModel):
    kind: Literal["batch"] = "batch"
    feasible: bool
    blocker: Question | None = None
    why_not: str = ""
    instance_type: str = "cpu-small"
    workers: int = 1
    mini_batch_rows: int = 4096
    rows_per_run: int = 0
    interval_s: float = 0.0
    runs_per_month: float = 0.0
    warm: bool = Field(False, description="Runs come so often that the workers never scale to zero.")
    startup_s: float = 0.0
    expected_duration_s: float | None = None
    time_to_result_s: float | None = None
    cost_per_run: float = 0.0
    cost_per_month: float = 0.0
    notes: list[str] = Field(default_factory=list)

    @property
    def configuration(self) -> str:
        w = "worker" if self.workers == 1 else "workers"
        return f"{self.workers} {w} x {self.instance_type}, mini-batches of {self.mini_batch_rows:,} rows"

    @property
    def expected(self) -> str:
        if self.expected_duration_s is None:
            return "-"
        start = "warm workers" if self.warm else f"incl. {format_duration(self.startup_s)} start-up"
        return f"{format_duration(self.expected_duration_s)} per run of {self.rows_per_run:,} rows ({start})"


def _ms(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


# --- queueing -----------------------------------------------------------------------------------


def online_latency(
    profile: ModelProfile, rate: float, rows: int, count: int, itype: InstanceType, max_batch_rows: int,
    q: float, a: Assumptions,
) -> tuple[float, float, float]:
    """(p50 ms, p-q ms, utilisation) of ``count`` instances of ``itype`` at ``rate`` requests/s."""
    speed = min(1.0, itype.cores)  # one predict at a time: a second core does not help, half a core halves speed

    def s(batch_rows: float) -> float:
        return profile.latency_at(batch_rows) / speed

    # Parsing and encoding are CPU work on the instance, paid per request even when predicts are batched.
    cpu = (a.request_cpu_ms + a.request_cpu_ms_per_row * rows) / speed

    def busy(k: float) -> float:  # ms an instance is busy with a micro-batch of k requests
        return s(k * rows) + k * cpu

    lam_i = rate / count
    kmax = max(1, max_batch_rows // rows)
    capacity = kmax / (busy(kmax) / 1000.0)  # requests/s of one instance with full batches
    util = lam_i / capacity
    svc = busy(1)
    mu = 1000.0 / svc
    e_q = svc + 1000.0 * wait_quantile(count, rate, mu, q)
    e_50 = svc + 1000.0 * wait_quantile(count, rate, mu, 0.5)
    b_q = b_50 = _INF
    if kmax > 1:
        k = 1.0
        for _ in range(200):
            nxt = max(1.0, lam_i * busy(k) / 1000.0)
            if nxt > kmax:
                k = _INF
                break
            if abs(nxt - k) < 1e-6:
                break
            k = nxt
        if not math.isinf(k):
            k_q = min(float(kmax), k + NormalDist().inv_cdf(q) * math.sqrt(k))
            b_q = busy(k) + busy(k_q)
            b_50 = 1.5 * busy(k)
    return min(e_50, b_50) + a.network_ms, min(e_q, b_q) + a.network_ms, util


def _types_by_price(prices: Prices) -> list[InstanceType]:
    return sorted(INSTANCE_TYPES.values(), key=lambda t: (prices.hourly(t.cores, t.memory_gib), t.cores))


def _monthly(prices: Prices, itype: InstanceType, count: float, hours_per_day: float) -> float:
    return prices.hourly(itype.cores, itype.memory_gib) * count * HOURS_PER_MONTH * hours_per_day / 24.0


# --- online ---------------------------------------------------------------------------------------


def size_online(profile: ModelProfile, workload: Workload, a: Assumptions | None = None) -> OnlineOption:
    """The cheapest online configuration that meets the workload's need at its peak."""
    a = a or Assumptions()
    prices = workload.prices
    limits = RequestSettings()
    default_batch = Batching().max_batch_size
    scheduled = workload.frequency.scheduled
    q = workload.latency_percentile / 100.0
    base = dict(percentile=workload.latency_percentile, hours_per_day=workload.hours_per_day)

    if scheduled and workload.latency_ms is None:
        return _size_online_for_runs(profile, workload, a, base)
    if scheduled:
        # Results needed at once for each scheduled batch (e.g. a sensor sweep every minute): one request per run.
        rows = int(workload.rows_per_run or 1)
        rate = max(workload.peak, 1.0 / float(workload.frequency.period_s or 1.0))
        avg_rate = max(workload.average, 1.0 / float(workload.frequency.period_s or 1.0))
    else:
        rows, rate, avg_rate = workload.rows_per_request, workload.peak, workload.average
    target_ms = workload.need_s * 1000.0
    base.update(rate_rps=rate, rows_per_request=rows)

    payload = rows * profile.bytes_per_row
    alone_ms = profile.latency_at(rows) + a.network_ms + a.request_cpu_ms + a.request_cpu_ms_per_row * rows
    if payload > limits.max_body_bytes:
        return OnlineOption(feasible=False, blocker="batch_size", **base, why_not=(
            f"one request of {rows:,} rows is ~{payload / 2**20:,.0f} MiB of JSON, over the "
            f"{limits.max_body_bytes / 2**20:.0f} MiB a request may carry"))
    if alone_ms > limits.request_timeout_ms:
        return OnlineOption(feasible=False, blocker="batch_size", **base, why_not=(
            f"one request of {rows:,} rows takes ~{format_duration(alone_ms / 1000)} to score, over the "
            f"{limits.request_timeout_ms / 1000:g} s request timeout"))

    best: tuple[float, int, int, OnlineOption] | None = None
    closest: tuple[float, OnlineOption] | None = None
    memory_blocked = True
    for itype in _types_by_price(prices):
        for mb in sorted({max(default_batch, rows), *[max(c, rows) for c in a.batch_size_choices]}):
            need_mib = (profile.rss_at(mb) + a.instance_overhead_mib) * a.memory_headroom
            if need_mib > itype.memory_gib * 1024:
                continue
            memory_blocked = False
            for count in range(1, a.max_instances + 1):
                p50, pq, util = online_latency(profile, rate, rows, count, itype, mb, q, a)
                if closest is None or pq < closest[0]:
                    closest = (pq, OnlineOption(feasible=False, instance_type=itype.name, instance_count=count,
                                                max_batch_size=mb, latency_p50_ms=p50, latency_ms=pq, utilization=util, **base))
                if pq <= target_ms and util <= a.max_utilization:
                    cost = _monthly(prices, itype, count, workload.hours_per_day)
                    opt = OnlineOption(
                        feasible=True, instance_type=itype.name, instance_count=count, min_instances=count,
                        max_batch_size=mb, latency_p50_ms=p50, latency_ms=pq, utilization=util,
                        time_to_result_s=pq / 1000.0, cost_per_hour=cost / (HOURS_PER_MONTH * workload.hours_per_day / 24.0),
                        cost_per_month=cost, **base,
                    )
                    if best is None or (cost, count, mb) < best[:3]:
                        best = (cost, count, mb, opt)
                    break
                if util < 0.05 and pq > target_ms:
                    break  # the instances are nearly idle already: more of them cannot help
    if best is None:
        if memory_blocked:
            largest = max(INSTANCE_TYPES.values(), key=lambda t: t.memory_gib)
            return OnlineOption(feasible=False, blocker="cost", **base, why_not=(
                f"the model needs ~{(profile.rss_at(rows) + a.instance_overhead_mib) * a.memory_headroom:,.0f} MiB, more than the largest "
                f"instance type ({largest.name}, {largest.memory_gib:g} GiB)"))
        assert closest is not None
        opt = closest[1]
        opt.time_to_result_s = (opt.latency_ms or _INF) / 1000.0
        if alone_ms > target_ms:
            opt.why_not = (f"one request of {rows:,} rows takes ~{_ms(alone_ms)} even on an idle instance, "
                           f"over the {workload.describe_need()} target")
        else:
            opt.why_not = (f"no configuration up to {a.max_instances} instances keeps p{workload.latency_percentile:g} "
                           f"under {_ms(target_ms)} at {rate:g} requests/s (best: {_ms(opt.latency_ms)})")
        opt.blocker = "latency"
        return opt

    opt = best[3]
    itype = INSTANCE_TYPES[opt.instance_type]
    # Autoscale between the average and the peak when they need different counts.
    if avg_rate < rate:
        for count in range(1, opt.instance_count + 1):
            _, pq, util = online_latency(profile, avg_rate, rows, count, itype, opt.max_batch_size, q, a)
            if pq <= target_ms and util <= a.max_utilization:
                break
        opt.min_instances = count
        if count < opt.instance_count:
            opt.cost_per_month_min = _monthly(prices, itype, count, workload.hours_per_day)
            opt.notes.append(f"at the average rate ({avg_rate:g}/s) {count} instance(s) suffice: autoscaling between "
                             f"{count} and {opt.instance_count} costs about {prices.format(opt.cost_per_month_min)} a month "
                             f"when the peak is rare")
    if opt.instance_count == 1:
        opt.notes.append("one instance has no redundancy: use 2 or more if the service must survive an instance restart")
    if workload.hours_per_day < 24:
        opt.notes.append(f"costed for {workload.hours_per_day:g} h a day: scale the deployment to zero outside those hours")
    return opt


def _size_online_for_runs(profile: ModelProfile, workload: Workload, a: Assumptions, base: dict) -> OnlineOption:
    """A scheduled run pushed through an always-on endpoint, in chunks sent concurrently."""
    prices = workload.prices
    rows = int(workload.rows_per_run or 1)
    limits = RequestSettings()
    chunk = min(rows, 4096)
    while chunk > 1 and (profile.latency_at(chunk) > limits.request_timeout_ms / 2
                         or chunk * profile.bytes_per_row > limits.max_body_bytes / 2):
        chunk //= 2
    budget = workload.need_s
    best: OnlineOption | None = None
    for itype in _types_by_price(prices):
        if (profile.rss_at(chunk) + a.instance_overhead_mib) * a.memory_headroom > itype.memory_gib * 1024:
            continue
        speed = min(1.0, itype.cores)
        per_chunk_s = ((profile.latency_at(chunk) + a.request_cpu_ms + a.request_cpu_ms_per_row * chunk) / speed
                       + a.network_ms) / 1000
        chunks = math.ceil(rows / chunk)
        for count in range(1, a.max_instances + 1):
            duration = math.ceil(chunks / count) * per_chunk_s
            if duration <= budget:
                cost = _monthly(prices, itype, count, workload.hours_per_day)
                if best is None or cost < best.cost_per_month:
                    best = OnlineOption(
                        feasible=True, instance_type=itype.name, instance_count=count, min_instances=count,
                        max_batch_size=max(chunk, Batching().max_batch_size), rows_per_request=chunk,
                        rate_rps=0.0, latency_p50_ms=per_chunk_s * 1000, latency_ms=per_chunk_s * 1000,
                        utilization=None, expected_duration_s=duration, time_to_result_s=duration,
                        cost_per_hour=cost / (HOURS_PER_MONTH * workload.hours_per_day / 24.0), cost_per_month=cost,
                        **{k: v for k, v in base.items() if k not in ("rate_rps", "rows_per_request")},
                    )
                break
    if best is None:
        return OnlineOption(feasible=False, blocker="latency", rows_per_request=chunk, **base,
                            why_not=f"{a.max_instances} instances cannot score {rows:,} rows within {format_duration(budget)}")
    per_run = workload.frequency.period_s or 0
    best.notes.append(f"the endpoint stays up between runs (every {format_duration(per_run)}) and is paid for all that time; "
                      f"the client sends the run in {math.ceil(rows / chunk):,} requests of {chunk:,} rows")
    return best


# --- batch ----------------------------------------------------------------------------------------


def batch_duration(profile: ModelProfile, rows: int, mini_batch: int, workers: int, a: Assumptions,
                   warm: bool = False) -> float:
    """Seconds for one run of ``rows`` rows: job overhead, start-up (unless warm) and waves of mini-batches.

    A batch worker is a whole single-threaded process (max_concurrency_per_instance 1), so it
    runs at the profiled per-core speed."""
    per_task = profile.latency_at(mini_batch) / 1000 + a.task_overhead_s + mini_batch * a.io_ms_per_row / 1000
    waves = math.ceil(math.ceil(rows / mini_batch) / workers)
    startup = 0.0 if warm else a.worker_start_s + profile.startup_s
    return a.job_overhead_s + startup + waves * per_task


def size_batch(profile: ModelProfile, workload: Workload, a: Assumptions | None = None) -> BatchOption:
    """The cheapest batch configuration (type, workers, mini-batch rows) that meets the deadline."""
    a = a or Assumptions()
    prices = workload.prices
    need = workload.need_s
    if workload.frequency.scheduled:
        interval = float(workload.frequency.period_s or need)
        rows = int(workload.rows_per_run or 1)
        wait = 0.0  # a run starts when its data is due; results are needed `need` later
    else:
        # Events accumulate and are scored in periodic runs: half the allowed time waiting, half running.
        interval = need / 2
        rows = max(1, math.ceil(workload.average * workload.rows_per_request * interval))
        wait = interval
    budget = need - wait
    warm = interval <= a.cluster_idle_s
    max_workers = workload.max_workers or os.cpu_count() or 1
    runs = HOURS_PER_MONTH * 3600 / interval
    base = dict(rows_per_run=rows, interval_s=interval, runs_per_month=runs, warm=warm)

    choices = sorted({min(m, rows) for m in a.mini_batch_choices})
    best: tuple[float, float, BatchOption] | None = None
    fastest: tuple[float, BatchOption] | None = None
    memory_blocked = True
    # A worker is priced as the cheapest whole-core type whose memory holds it (a worker process
    # cannot use half a core, and extra cores would sit idle under one thread).
    worker_types = [t for t in _types_by_price(prices) if t.cores >= 1]
    for itype in worker_types:
        hourly = prices.hourly(itype.cores, itype.memory_gib)
        for m in choices:
            if profile.rss_at(m) * a.memory_headroom > itype.memory_gib * 1024:
                continue
            memory_blocked = False
            tasks = math.ceil(rows / m)
            for workers in range(1, min(max_workers, tasks) + 1):
                dur = batch_duration(profile, rows, m, workers, a, warm)
                startup = 0.0 if warm else a.worker_start_s + profile.startup_s
                opt = BatchOption(
                    feasible=dur <= budget, instance_type=itype.name, workers=workers, mini_batch_rows=m,
                    startup_s=startup, expected_duration_s=dur, time_to_result_s=wait + dur,
                    cost_per_run=workers * hourly * (interval if warm else dur) / 3600, **base,
                )
                opt.cost_per_month = opt.cost_per_run * runs
                if fastest is None or dur < fastest[0]:
                    fastest = (dur, opt)
                if opt.feasible:
                    if best is None or (opt.cost_per_month, dur) < best[:2]:
                        best = (opt.cost_per_month, dur, opt)
                    break
    if best is not None:
        opt = best[2]
        if warm:
            opt.notes.append(f"runs every {format_duration(interval)} come faster than the cluster's "
                             f"{format_duration(a.cluster_idle_s)} idle timeout: workers stay up and are paid around the clock")
        else:
            opt.notes.append("paid only while a run is going; the local cluster scales to zero workers between runs")
        if not workload.frequency.scheduled:
            opt.notes.append(f"events are collected and scored every {format_duration(interval)} "
                             f"(~{rows:,} rows a run at the average rate)")
        return opt
    if memory_blocked:
        return BatchOption(feasible=False, blocker="cost", **base, why_not=(
            f"a mini-batch needs ~{profile.rss_at(choices[0]) * a.memory_headroom:,.0f} MiB, more than the largest instance type"))
    assert fastest is not None
    opt = fastest[1]
    floor_s = a.job_overhead_s + opt.startup_s + profile.latency_at(1) / 1000
    if budget <= 0 or floor_s > budget:
        opt.blocker = "latency"
        start = "" if warm else f", of which {format_duration(opt.startup_s)} starting workers from zero"
        opt.why_not = (f"a batch job takes at least {format_duration(floor_s)} before the first result{start}; "
                       f"results are needed {workload.describe_need()}")
    else:
        opt.blocker = "cost"
        opt.why_not = (f"{max_workers} worker(s) take ~{format_duration(opt.expected_duration_s or 0)} for {rows:,} rows, "
                       f"over the {format_duration(budget)} allowed: more workers are needed (max_workers, or a remote "
                       f"Dask cluster)")
    return opt
