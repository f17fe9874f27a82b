"""Fast checks of the pure parts: route tables, sliding-window stats, metrics text, resources."""

from __future__ import annotations

import random
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from toolkit.online.metrics import InstanceSample, Metrics
from toolkit.online.resources import CpuAllocator, compute_for, thread_env
from toolkit.online.router import RouteTable
from toolkit.online.stats import DeploymentStats


def test_route_table_weights_mirror_and_failed_deployments() -> None:
    t = RouteTable.build("e", {"traffic": {"blue": 90, "green": 10, "red": 0}, "mirror_traffic": {"red": 20}}, None)
    rnd = random.Random(1)
    picks = Counter(t.pick(rnd) for _ in range(20000))
    assert set(picks) == {"blue", "green"} and 0.08 < picks["green"] / 20000 < 0.12
    assert t.primary() == "blue" and t.live == ("blue", "green")
    mirrored = sum(t.mirror_now(rnd) == "red" for _ in range(20000))
    assert 0.18 < mirrored / 20000 < 0.22

    failed = RouteTable.build("e", {"traffic": {"blue": 90, "green": 10}}, None, failed={"blue": "boom"})
    assert {failed.pick(rnd) for _ in range(100)} == {"green"} and "boom" in failed.unhealthy
    assert RouteTable.build("e", {"traffic": {}}, None).pick() is None


def test_sliding_window_stats() -> None:
    s = DeploymentStats(window_s=60)
    for i in range(100):
        s.record(200, (i + 1) / 1000, now=1000 + i * 0.1)
    s.record(429, 0.0001, now=1010)
    snap = s.snapshot(now=1010)
    assert snap["p50_ms"] == 51 and snap["p99_ms"] == 99 and snap["served"] == 101
    assert snap["errors"] == {"429": 1} and snap["throttled"] == 1
    later = s.snapshot(now=1100)  # everything slid out of the window
    assert later["window_requests"] == 0 and later["p50_ms"] is None and later["served"] == 101


def test_metrics_text_parses() -> None:
    m = Metrics(lambda: [InstanceSample("e", "d", "d-0", "Ready", None, 0.0)])
    for status in (200, 200, 429):
        m.on_request("e", "d", status, 0.01)
    m.on_batch("e", "d", 4)
    fams = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    reqs = {s.labels["status"]: s.value for s in fams["endpoints_requests"].samples if s.name.endswith("_total")}
    assert reqs == {"200": 2.0, "429": 1.0}
    assert [s.value for s in fams["endpoints_throttled"].samples if s.name.endswith("_total")] == [1.0]
    ready = [s for s in fams["endpoints_instances"].samples if s.labels["state"] == "Ready"]
    assert ready[0].value == 1.0


def test_instance_types_become_cpu_sets_and_thread_caps() -> None:
    alloc = CpuAllocator([0, 1, 2, 3])
    small, medium, nano = compute_for("cpu-small"), compute_for("cpu-medium"), compute_for("cpu-nano")
    assert alloc.allocate(small) == [0] and alloc.allocate(small) == [1]
    assert alloc.allocate(medium) == [2, 3]
    assert alloc.allocate(nano) == [0]  # a fraction shares one CPU
    assert thread_env(medium)["OMP_NUM_THREADS"] == "2" and thread_env(nano)["MKL_NUM_THREADS"] == "1"
    assert nano.memory_limit_bytes == 512 * 1024 * 1024
    assert CpuAllocator([0, 1]).allocate(compute_for("cpu-xlarge")) == [0, 1]  # capped at the machine
