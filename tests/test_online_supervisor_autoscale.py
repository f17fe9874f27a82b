"""Autoscaling: up under load and back down; scale to zero and a cold start on the next request."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterator

import pytest

from test_online_gateway_support import OnlineHost, auth, churn_body, fire, make_home, write_script
from toolkit.online.autoscale import decide

pytestmark = pytest.mark.timeout(300)

SLOW = """
import time

def run(data):
    time.sleep(0.1)
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[OnlineHost]:
    h = OnlineHost(make_home(tmp_path_factory.mktemp("scale") / "home", demo_registry),
                   monitor_interval_s=0.5).start()
    try:
        yield h
    finally:
        h.stop()


def test_decide() -> None:
    assert decide(1, cpu_util=10, conc_util=140, target=70, lo=1, hi=4).desired == 2
    assert decide(2, cpu_util=10, conc_util=20, target=70, lo=1, hi=4).desired == 1
    assert decide(2, cpu_util=300, conc_util=0, target=70, lo=1, hi=3).desired == 3  # capped at max
    assert decide(3, cpu_util=0, conc_util=0, target=70, lo=2, hi=3).desired == 2    # floored at min


def test_scales_up_under_load_then_down(host: OnlineHost, tmp_path: Path) -> None:
    secrets = host.create_endpoint("elastic")
    code = write_script(tmp_path / "code", SLOW)
    assert host.deploy("elastic", "auto", code_configuration=code, instance_count=1,
                       request_settings={"max_concurrent_requests_per_instance": 2, "max_queue_wait_ms": 2000},
                       scale_settings={"type": "target_utilization", "min_instances": 1, "max_instances": 2,
                                       "target_utilization_percentage": 50, "polling_interval": 1,
                                       "scale_down_delay": 1}) == "Succeeded"
    host.set_traffic("elastic", {"auto": 100})
    stop = threading.Event()
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fire(
        f"{host.url}/endpoints/elastic/score", 5000, concurrency=4, body=b'{"x": 1}', headers=auth(secrets),
        stop=stop)), daemon=True)
    t.start()
    try:
        host.wait_for(lambda: host.describe("elastic", "auto")["ready"] == 2, timeout=60, what="scale up")
    finally:
        stop.set()
        t.join(60)
    replies = out[0]
    assert {r.status for r in replies} <= {200, 429}, {r.status for r in replies}  # type: ignore[attr-defined]
    up = host.events("elastic", "auto", reason="ScaledUp")
    assert up and "from 1 to 2" in up[0].message and "target 50%" in up[0].message

    host.wait_for(lambda: host.describe("elastic", "auto")["total"] == 1, timeout=60, what="scale down")
    down = host.events("elastic", "auto", reason="ScaledDown")
    assert down and "from 2 to 1" in down[0].message
    assert host.stats("elastic")["deployments"]["auto"]["instances"]["target"] == 1


def test_scale_to_zero_and_cold_start(host: OnlineHost) -> None:
    secrets = host.create_endpoint("sleepy")
    assert host.deploy("sleepy", "zero", instance_count=1,
                       scale_settings={"type": "target_utilization", "min_instances": 0, "max_instances": 1,
                                       "polling_interval": 1, "idle_timeout": 1}) == "Succeeded"
    host.set_traffic("sleepy", {"zero": 100})
    host.wait_for(lambda: host.describe("sleepy", "zero")["total"] == 0, timeout=60, what="scale to zero")
    assert any("idle" in e.message for e in host.events("sleepy", "zero", reason="ScaledDown"))
    ready = fire(f"{host.url}/v2/models/sleepy/ready", 1, method="GET", headers=auth(secrets))[0]
    assert ready.status == 200  # scaled to zero still counts as able to serve

    r = fire(f"{host.url}/endpoints/sleepy/score", 1, body=churn_body(2), headers=auth(secrets))[0]
    assert r.status == 200 and len(r.json()["predictions"]) == 2, r
    assert host.describe("sleepy", "zero")["ready"] == 1
    assert any("cold start" in e.message for e in host.events("sleepy", "zero", reason="ScaledUp"))
    assert json.loads(r.body)
