"""Prometheus metrics of the online data plane (``GET /metrics``).

A dedicated :class:`CollectorRegistry` per service, never the process-global one: two services
in one process (tests, notebooks) must not share counters or collide on registration.  Label
children are cached per (endpoint, deployment[, status]) because ``.labels()`` takes a lock and
formats strings, which is measurable on the hot path.  Instance CPU and memory are read from
psutil when Prometheus scrapes, not on a timer.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, NamedTuple

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .resources import tree_rss

__all__ = ["Metrics", "InstanceSample", "CONTENT_TYPE_LATEST", "INSTANCE_STATES"]

INSTANCE_STATES = ("Starting", "Ready", "NotReady", "Draining", "Restarting", "Stopped", "Failed")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class InstanceSample(NamedTuple):
    endpoint: str
    deployment: str
    instance: str
    state: str
    process: psutil.Process | None
    cpu_percent: float


class _InstanceCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[InstanceSample]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        states = GaugeMetricFamily("endpoints_instances", "Instance processes by state.",
                                   labels=["endpoint", "deployment", "state"])
        cpu = GaugeMetricFamily("endpoints_instance_cpu_percent",
                                "CPU use of an instance over the last monitor interval (100 = one core).",
                                labels=["endpoint", "deployment", "instance"])
        cpu_s = CounterMetricFamily("endpoints_instance_cpu_seconds",
                                    "CPU seconds (user+system) used by an instance process.",
                                    labels=["endpoint", "deployment", "instance"])
        mem = GaugeMetricFamily("endpoints_instance_memory_bytes", "Resident memory of an instance (with children).",
                                labels=["endpoint", "deployment", "instance"])
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for s in self.source():
            per = counts.setdefault((s.endpoint, s.deployment), {st: 0 for st in INSTANCE_STATES})
            per[s.state] = per.get(s.state, 0) + 1
            if s.process is None:
                continue
            labels = [s.endpoint, s.deployment, s.instance]
            try:
                times = s.process.cpu_times()
                rss = tree_rss(s.process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            cpu.add_metric(labels, s.cpu_percent)
            cpu_s.add_metric(labels, times.user + times.system)
            mem.add_metric(labels, float(rss))
        for (e, d), per in counts.items():
            for st, n in per.items():
                states.add_metric([e, d, st], float(n))
        yield states
        yield cpu
        yield cpu_s
        yield mem


class Metrics:
    """The service's metrics; the gateway calls the small ``on_*`` methods."""

    def __init__(self, instances: Callable[[], Iterable[InstanceSample]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter("endpoints_requests", "Scoring requests answered, by status code.",
                                ["endpoint", "deployment", "status"], registry=r)
        self.latency = Histogram("endpoints_request_duration_seconds",
                                 "Gateway-measured request latency (queueing included).",
                                 ["endpoint", "deployment"], buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("endpoints_in_flight", "Requests being scored or queued at the gateway.",
                               ["endpoint", "deployment"], registry=r)
        self.throttled = Counter("endpoints_throttled", "Requests refused with 429 (over capacity or queue wait).",
                                 ["endpoint", "deployment"], registry=r)
        self.batch_size = Histogram("endpoints_batch_size", "Requests in the model call that served a request (X-Batch-Size).",
                                    ["endpoint", "deployment"], buckets=_BATCH_BUCKETS, registry=r)
        self.mirrored = Counter("endpoints_mirrored_requests", "Shadow copies answered by a mirror deployment.",
                                ["endpoint", "deployment", "status"], registry=r)
        self.retries = Counter("endpoints_retries", "Requests retried on another instance after a connection failure.",
                               ["endpoint", "deployment"], registry=r)
        r.register(_InstanceCollector(instances))
        self._req: dict[tuple[str, str, int], Any] = {}
        self._lat: dict[tuple[str, str], Any] = {}
        self._inf: dict[tuple[str, str], Any] = {}
        self._bat: dict[tuple[str, str], Any] = {}

    def on_request(self, endpoint: str, deployment: str, status: int, latency_s: float | None) -> None:
        key = (endpoint, deployment, status)
        c = self._req.get(key)
        if c is None:
            c = self._req[key] = self.requests.labels(endpoint, deployment, str(status))
        c.inc()
        if latency_s is not None:
            h = self._lat.get(key[:2])
            if h is None:
                h = self._lat[key[:2]] = self.latency.labels(endpoint, deployment)
            h.observe(latency_s)
        if status == 429:
            self.throttled.labels(endpoint, deployment).inc()

    def in_flight_gauge(self, endpoint: str, deployment: str) -> Any:
        g = self._inf.get((endpoint, deployment))
        if g is None:
            g = self._inf[(endpoint, deployment)] = self.in_flight.labels(endpoint, deployment)
        return g

    def on_batch(self, endpoint: str, deployment: str, size: int) -> None:
        h = self._bat.get((endpoint, deployment))
        if h is None:
            h = self._bat[(endpoint, deployment)] = self.batch_size.labels(endpoint, deployment)
        h.observe(size)

    def on_mirror(self, endpoint: str, deployment: str, status: int) -> None:
        self.mirrored.labels(endpoint, deployment, str(status)).inc()

    def on_retry(self, endpoint: str, deployment: str) -> None:
        self.retries.labels(endpoint, deployment).inc()

    def forget(self, endpoint: str, deployment: str | None = None) -> None:
        """Drop every series of a deleted endpoint (or of one deleted deployment of it)."""

        def gone(labels: tuple[str, ...]) -> bool:
            return labels[0] == endpoint and (deployment is None or labels[1] == deployment)

        for metric in (self.requests, self.latency, self.in_flight, self.throttled, self.batch_size,
                       self.mirrored, self.retries):
            # prometheus_client has no public listing of a metric's children; _metrics is it.
            for labels in [k for k in list(getattr(metric, "_metrics", {})) if gone(k)]:
                try:
                    metric.remove(*labels)
                except KeyError:
                    pass
        for cache in (self._req, self._lat, self._inf, self._bat):
            for key in [k for k in cache if gone(k)]:
                del cache[key]

    def render(self) -> bytes:
        return generate_latest(self.registry)
