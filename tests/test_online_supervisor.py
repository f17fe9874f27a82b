"""Supervisor: instance restarts, failed loads, updates and traffic shifts under load, memory limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from test_online_gateway_support import OnlineHost, Reply, auth, churn_body, fire, make_home, pid_alive, write_script

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[OnlineHost]:
    home = make_home(tmp_path_factory.mktemp("sup") / "home", demo_registry)
    h = OnlineHost(home, monitor_interval_s=0.25).start()
    try:
        yield h
    finally:
        h.stop()


def _background(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def _pids(host: OnlineHost, e: str, d: str) -> list[int]:
    return [i["pid"] for i in host.describe(e, d)["instances"]]


def test_sigkill_of_one_instance_under_load_loses_nothing(host: OnlineHost) -> None:
    secrets = host.create_endpoint("kill")
    assert host.deploy("kill", "two", instance_count=2) == "Succeeded", host.state("kill", "two")
    host.set_traffic("kill", {"two": 100})
    victim = _pids(host, "kill", "two")[0]
    assert len(set(_pids(host, "kill", "two"))) == 2
    # Instances are spread over the CPUs (two cpu-small instances, two CPUs here).
    cpus = [i["cpus"] for i in host.describe("kill", "two")["instances"]]
    if (os.cpu_count() or 1) >= 2:
        assert cpus[0] != cpus[1]

    t, out = _background(lambda: fire(f"{host.url}/endpoints/kill/score", 1500, concurrency=8,
                                      body=churn_body(2), headers=auth(secrets)))
    host.wait_for(lambda: host.stats("kill")["deployments"]["two"]["served"] > 100, what="load to start")
    os.kill(victim, signal.SIGKILL)
    t.join(120)
    replies: list[Reply] = out[0]
    assert len(replies) == 1500
    assert Counter(r.status for r in replies) == {200: 1500}

    host.wait_for(lambda: host.describe("kill", "two")["ready"] == 2, timeout=90, what="the instance to come back")
    d = host.describe("kill", "two")
    assert sum(i["restarts"] for i in d["instances"]) == 1
    assert victim not in _pids(host, "kill", "two")
    reasons = [e.reason for e in host.events("kill", "two")]
    for reason in ("InstanceStarted", "InstanceReady", "InstanceExited", "InstanceRestarted"):
        assert reason in reasons, reasons


def test_failed_model_load_is_reported_and_the_endpoint_keeps_serving(host: OnlineHost, tmp_path: Path) -> None:
    secrets = host.create_endpoint("broken")
    assert host.deploy("broken", "blue") == "Succeeded"
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: no_such_loader_module_xyz\n")
    assert host.deploy("broken", "green", model=str(bad)) == "Failed"
    state, message = host.state("broken", "green")
    assert "no_such_loader_module_xyz" in message, message
    assert host.events("broken", "green", reason="ModelLoadFailed")
    assert host.describe("broken", "green")["failed"]

    # green's share goes to blue while green is Failed; naming green says why it cannot serve.
    host.set_traffic("broken", {"blue": 50, "green": 50})
    replies = fire(f"{host.url}/endpoints/broken/score", 200, concurrency=4, body=churn_body(1), headers=auth(secrets))
    assert {(r.status, r.headers["x-deployment"]) for r in replies} == {(200, "blue")}
    r = fire(f"{host.url}/endpoints/broken/score", 1, body=churn_body(1),
             headers={**auth(secrets), "X-Deployment": "green"})[0]
    assert r.status == 503 and "no_such_loader_module_xyz" in r.json()["message"]
    host.set_traffic("broken", {"blue": 100, "green": 0})
    host.call(host.service.undeploy("broken", "green"))


def test_update_and_traffic_shift_under_load_fail_nothing(host: OnlineHost) -> None:
    secrets = host.create_endpoint("roll")
    assert host.deploy("roll", "blue", model="models:/churn/1") == "Succeeded"
    assert host.deploy("roll", "green", model="models:/churn/2") == "Succeeded"
    host.set_traffic("roll", {"blue": 100, "green": 0})
    old_pids = _pids(host, "roll", "blue")

    steps = [(80, 20), (50, 50), (20, 80), (0, 100)]
    stop = threading.Event()
    t, out = _background(lambda: fire(f"{host.url}/endpoints/roll/score", 20000, concurrency=8,
                                      body=churn_body(2), headers=auth(secrets), stop=stop))
    try:
        host.wait_for(lambda: host.stats("roll")["deployments"]["blue"]["served"] > 200, what="load")
        # In-place update of blue (v1 -> v2) while it takes all the traffic: no downtime.
        assert host.deploy("roll", "blue", model="models:/churn/2") == "Succeeded"
        for b, g in steps:
            host.set_traffic("roll", {"blue": b, "green": g})
            before = host.stats("roll")["deployments"]["green"]["served"]
            host.wait_for(lambda: host.stats("roll")["deployments"]["green"]["served"] > before + 100,
                          what="traffic at this step")
    finally:
        stop.set()
        t.join(180)
    replies: list[Reply] = out[0]
    assert len(replies) >= 1000
    assert Counter(r.status for r in replies) == {200: len(replies)}, Counter(r.status for r in replies)
    served_by = Counter(r.headers["x-deployment"] for r in replies)
    assert served_by["green"] > 0 and served_by["blue"] > 0

    d = host.describe("roll", "blue")
    assert d["model_uri"] == "models:/churn/2" and d["ready"] == 1
    assert not set(old_pids) & set(_pids(host, "roll", "blue"))
    host.wait_for(lambda: not any(pid_alive(p) for p in old_pids), timeout=30, what="old instance to stop")
    assert host.events("roll", "blue", reason="DeploymentUpdated")
    assert host.state("roll", "blue")[0] == "Succeeded"


MEMORY_HOG = """
import time
_kept = []

def run(data):
    # Written, not just reserved, so the pages count as resident memory.
    _kept.append(b"x" * (700 * 1024 * 1024))
    time.sleep(5)
    return {"kept_mib": 700 * len(_kept)}
"""


def test_memory_limit_restarts_the_instance(host: OnlineHost, tmp_path: Path) -> None:
    secrets = host.create_endpoint("hog")
    code = write_script(tmp_path / "hog", MEMORY_HOG)
    assert host.deploy("hog", "nano", instance_type="cpu-nano", code_configuration=code,
                       request_settings={"request_timeout_ms": 15000}) == "Succeeded", host.state("hog", "nano")
    d = host.describe("hog", "nano")
    assert d["memory_limit_mib"] == 512
    pid = d["instances"][0]["pid"]
    r = fire(f"{host.url}/endpoints/hog/score", 1, body=b'{"anything": 1}',
             headers={**auth(secrets), "X-Deployment": "nano"})[0]
    assert r.status in (503, 408) and r.json()["error_code"], r  # its instance was killed mid-request
    events = host.events("hog", "nano", reason="MemoryLimitExceeded")
    assert events and "512 MiB" in events[0].message
    host.wait_for(lambda: host.describe("hog", "nano")["ready"] == 1, timeout=90, what="restart after OOM")
    d = host.describe("hog", "nano")
    assert d["instances"][0]["restarts"] >= 1 and d["instances"][0]["pid"] != pid
    host.call(host.service.undeploy("hog", "nano"))


HOST_SCRIPT = """
import sys, time, json
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_online_gateway_support import OnlineHost, make_home
h = OnlineHost(make_home(Path({home!r}), Path({demo!r}))).start()
h.create_endpoint("orphan")
state = h.deploy("orphan", "blue")
print(json.dumps({{"state": state, "pids": [i["pid"] for i in h.describe("orphan", "blue")["instances"]]}}), flush=True)
time.sleep(600)
"""


def test_instances_die_with_a_killed_host(tmp_path: Path, demo_registry: Path) -> None:
    script = HOST_SCRIPT.format(tests=str(Path(__file__).parent), home=str(tmp_path / "home"), demo=str(demo_registry))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        import json

        line = proc.stdout.readline()  # type: ignore[union-attr]
        info = json.loads(line)
        assert info["state"] == "Succeeded" and info["pids"]
        assert all(pid_alive(p) for p in info["pids"])
        proc.kill()
        proc.wait(30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(pid_alive(p) for p in info["pids"]):
            time.sleep(0.1)
        assert not any(pid_alive(p) for p in info["pids"]), "instance outlived a kill -9 of its host"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_start_brings_back_stored_deployments(tmp_path: Path, demo_registry: Path) -> None:
    home = make_home(tmp_path / "home", demo_registry)
    first = OnlineHost(home).start()
    secrets = first.create_endpoint("again", traffic={})
    assert first.deploy("again", "blue") == "Succeeded"
    first.set_traffic("again", {"blue": 100})
    pids = _pids(first, "again", "blue")
    first.stop()
    assert not any(pid_alive(p) for p in pids)  # stop() stops every instance

    second = OnlineHost(home).start()  # start() reads the store
    try:
        assert second.call(second.service.wait("again", "blue")) == "Succeeded"
        r = fire(f"{second.url}/endpoints/again/score", 1, body=churn_body(1), headers=auth(secrets))[0]
        assert r.status == 200 and r.headers["x-deployment"] == "blue"
    finally:
        second.stop()
