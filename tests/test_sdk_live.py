"""The live SDK for UIs against a real host: snapshot, events after a cursor, stats history, log
tails with offsets, job progress and watch, the async client, and transport errors mapped."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
import pytest

from conftest import free_port
from toolkit import (
    AsyncWorkspace, DeploymentStatus, EventPage, HostError, HostNotRunning, HostTimeout, InvalidInput, NotFound,
    Snapshot, StatsSeries, ToolkitError, Workspace,
)
from toolkit.client import AsyncHostClient, HostClient
from toolkit.demo.data import CHURN_FEATURES, churn_frame, write_oj_weekly_files
from toolkit.home import Home
from toolkit.host import daemon
from toolkit.online.stats import BUCKET_S, DeploymentStats
from toolkit.views import JobProgress, LogChunk

pytestmark = pytest.mark.timeout(600)

SLOW_SCRIPT = '''
import os, time
import mlflow.pyfunc
import pandas as pd

model = None

def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])

def run(mini_batch):
    time.sleep(float(os.environ.get("SLOW_SCORE_S", "0")))
    out = []
    for path in mini_batch:
        df = pd.read_csv(path)
        out.append(pd.DataFrame({"file_name": os.path.basename(path), "prediction": model.predict(df)}))
    return pd.concat(out, ignore_index=True)
'''


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[SimpleNamespace]:
    """One host for the module: online endpoint churn (blue, one instance, all traffic), batch
    endpoint oj with a plain deployment and a slow scripted one, and a small data folder."""
    root = tmp_path_factory.mktemp("live") / "home"
    root.mkdir()
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENDPOINTS_HOME", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        home = Home(root).ensure()
        home.configure_mlflow()
        ws = Workspace(home, port=free_port())
        try:
            ws.online_endpoints.create_or_update({"name": "churn"})
            progress: list[DeploymentStatus] = []
            ws.online_deployments.create_or_update(
                {"name": "blue", "endpoint_name": "churn", "model": "models:/churn/1", "instance_type": "cpu-nano",
                 "instance_count": 1}, wait=False)
            ws.online_deployments.wait("churn", "blue", on_progress=progress.append)
            ws.online_endpoints.update_traffic("churn", {"blue": 100})

            code = root.parent / "code"
            code.mkdir()
            (code / "score.py").write_text(textwrap.dedent(SLOW_SCRIPT))
            ws.batch_endpoints.create_or_update({"name": "oj-sales"})
            ws.batch_deployments.create_or_update(
                {"name": "forest", "endpoint_name": "oj-sales", "model": "models:/oj-sales@production"})
            ws.batch_deployments.create_or_update(
                {"name": "slow", "endpoint_name": "oj-sales", "model": "models:/oj-sales@production",
                 "code_configuration": {"code": str(code), "scoring_script": "score.py"},
                 "environment_variables": {"SLOW_SCORE_S": "300"}, "mini_batch_size": 1})
            data = root.parent / "weekly"
            write_oj_weekly_files(data, weeks=3, stores=2)
            yield SimpleNamespace(ws=ws, home=home, progress=progress, data=data)
        finally:
            ws.close()
            daemon.stop(home)


def churn_rows(n: int = 2) -> Any:
    return churn_frame().iloc[:n][CHURN_FEATURES]


# --- events ------------------------------------------------------------------------------------

def test_a_flood_between_two_polls_is_seen_once_each_in_order(live: SimpleNamespace) -> None:
    ws = live.ws
    ws.online_endpoints.create_or_update({"name": "flood"})
    first = ws.events_page(0, endpoint="flood", limit=50)
    assert [e.reason for e in first.events] == ["EndpointCreated"] and not first.more
    cursor, seen = first.cursor, [e.id for e in first.events]

    # 130 events (2.6 pages) land from another client while the poller runs.
    with Workspace(live.home, start=False) as other:
        flooder = threading.Thread(target=lambda: [other.online_endpoints.update_traffic("flood", {}, {})
                                                   for _ in range(130)])
        flooder.start()
        while True:
            flooding = flooder.is_alive()  # read before the poll: a poll after the flood sees all of it
            page = ws.events_page(cursor, endpoint="flood", limit=50)
            assert page.cursor == (page.events[-1].id if page.events else cursor)
            seen += [e.id for e in page.events]
            cursor = page.cursor
            if not flooding and not page.more:
                break
        flooder.join()
    # Another 130 in one burst with no poll in between: three pages, the last says no more.
    for _ in range(130):
        ws.online_endpoints.update_traffic("flood", {}, {})
    pages = []
    while True:
        page = ws.events_page(cursor, endpoint="flood", limit=50)
        pages.append(page)
        seen += [e.id for e in page.events]
        cursor = page.cursor
        if not page.more:
            break
    assert [len(p) for p in pages] == [50, 50, 30] and [p.more for p in pages] == [True, True, False]

    truth = [e["id"] for e in ws.events(endpoint="flood", since=0, limit=10_000)]
    assert len(truth) == 1 + 130 + 130
    assert seen == truth  # every event, exactly once, in order
    assert ws.events_page(cursor, endpoint="flood").events == [] and ws.events_page(cursor).cursor >= cursor


def test_event_cursors_out_of_range_are_a_400_naming_the_parameter(live: SimpleNamespace) -> None:
    headers = {"Authorization": f"Bearer {live.home.admin_token()}"}
    for query, name in (("since=99999999999999999999", "since"), ("after=99999999999999999999", "after"),
                        ("after=-1", "after"), ("after=x", "after")):
        resp = httpx.get(f"{live.ws.url}/api/v1/events?{query}", headers=headers)
        assert resp.status_code == 400 and name in resp.json()["message"], resp.text
    old = httpx.get(f"{live.ws.url}/api/v1/events?since=0&limit=2", headers=headers)
    assert old.status_code == 200 and isinstance(old.json(), list) and len(old.json()) == 2
    with pytest.raises(InvalidInput, match="after"):
        live.ws.events_page(-3)


# --- snapshot, stats, invoke_raw ------------------------------------------------------------------

def test_deployment_wait_reports_progress_until_ready(live: SimpleNamespace) -> None:
    states = [p.state for p in live.progress]
    assert states[-1] == "Succeeded" and set(states) <= {"Creating", "Succeeded"}
    final = live.progress[-1]
    assert final.name == "blue" and final.endpoint_name == "churn" and final.ready_instances == 1
    assert final.instances[0].pid and final.instances[0].state == "Ready"


def test_snapshot_holds_host_endpoints_deployments_jobs_and_events(live: SimpleNamespace) -> None:
    ws = live.ws
    job = ws.batch_endpoints.invoke("oj-sales", live.data, deployment_name="forest")
    done = job.wait(progress=True, timeout=300)
    assert done.state == "Completed"

    snap = ws.snapshot()
    assert isinstance(snap, Snapshot) and snap.host.pid == ws.status().pid and snap.host.url == ws.url
    churn = snap.endpoint("churn")
    assert churn.kind == "online" and churn.traffic == {"blue": 100} and churn.scoring_uri.endswith("/churn/score")
    blue = churn.deployment("blue")
    assert (blue.state, blue.model_version, blue.traffic, blue.ready_instances) == ("Succeeded", "churn:1", 100, 1)
    assert blue.stats is not None and blue.stats.duration_s == 60
    oj = snap.endpoint("oj-sales")
    assert oj.kind == "batch" and oj.default_deployment == "forest"
    assert {d.name for d in oj.deployments} == {"forest", "slow"}
    streamed = list(done.stream())
    assert streamed[-1]["reason"] == "JobCompleted" and len({e["id"] for e in streamed}) == len(streamed)
    assert [e["id"] for e in streamed] == [e.id for e in ws.events_page(0, job=job.id, limit=1000)]
    mine = next(j for j in snap.jobs if j.id == job.id)
    assert mine.done and mine.state == "Completed" and mine.mini_batches_total == mine.mini_batches_done > 0
    assert mine.rows == len(done.outputs()) and mine.error_count == 0 and mine.failed_files == {}
    assert snap.events.events and snap.events.cursor == snap.events.events[-1].id and not snap.events.more
    assert any(e.reason == "DeploymentReady" for e in ws.snapshot(endpoint="churn", events_limit=1000).events)

    # The next frame asks only for what came after the cursor.
    later = ws.snapshot(events_after=snap.events.cursor)
    assert all(e.id > snap.events.cursor for e in later.events)
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
    assert "churn" in repr(blue) and "<table>" in snap._repr_html_()
    with pytest.raises(NotFound, match="ghost"):
        ws.snapshot(endpoint="ghost")


def test_invoke_raw_and_stats_history_after_some_requests(live: SimpleNamespace) -> None:
    ws = live.ws

    def total(series: list[StatsSeries]) -> tuple[int, int]:
        blue = next(s for s in series if (s.endpoint, s.deployment) == ("churn", "blue"))
        return sum(b.requests for b in blue.buckets), sum(b.errors for b in blue.buckets)

    before = total(ws.stats_history("churn"))
    for _ in range(5):
        ok = ws.online_endpoints.invoke_raw("churn", churn_rows(2))
        assert ok.ok and ok.status_code == 200 and ok.deployment == "blue" and ok.request_id
        assert len(ok.predictions) == 2 and ok.latency_ms > 0
    bad = ws.online_endpoints.invoke_raw("churn", {"nonsense": 1})
    assert bad.status_code == 400 and bad.body["error_code"] == "InvalidInput" and bad.predictions is None

    series = ws.stats_history("churn")
    after = total(series)
    assert after[0] - before[0] == 6 and after[1] - before[1] == 1
    buckets = series[0].buckets
    assert all(b2.ts - b1.ts == 10 for b1, b2 in zip(buckets, buckets[1:]))  # zero-filled, 10 s apart
    assert any(b.p50_ms is not None and b.p50_ms <= b.p99_ms for b in buckets)
    recent = ws.stats_history("churn", since=buckets[-1].ts)
    assert [b.ts for b in recent[0].buckets] == [buckets[-1].ts]
    assert ws.stats_history("churn", since=buckets[-1].ts + 3600)[0].buckets == []
    with pytest.raises(NotFound):
        ws.stats_history("ghost")


def test_stats_buckets_count_each_request_once_and_bound_their_size() -> None:
    t0 = time.monotonic()
    s = DeploymentStats()
    for i in range(3000):  # 30 s of traffic: 1..100 ms latencies, every 100th an error
        s.record(500 if i % 100 == 99 else 200, (i % 100 + 1) / 1000, now=t0 + i / 100)
    s.mirrored += 4
    hist = [b for b in s.history(now=t0 + 30) if b["requests"]]
    assert sum(b["requests"] for b in hist) == 3000 and sum(b["errors"] for b in hist) == 30
    full = hist[1]
    assert full["duration_s"] == BUCKET_S and full["rps"] == full["requests"] / BUCKET_S
    # exact p50/p99 of 1..99 ms are 50 and 98 ms; the histogram is within 5%
    assert abs(full["p50_ms"] - 50) <= 2.5 and abs(full["p99_ms"] - 98) <= 4.9
    # a bucket holds a histogram, not the requests: its size does not grow with traffic
    assert all(len(b.latency_bins) <= 60 for b in s._history)
    assert sum(b.mirrored for b in s._history) == 4 and s.mirrored == 4
    # 15 minutes later the old buckets are gone; empty slots read as zeros
    later = s.history(now=t0 + 30 + 910)
    assert len(later) == 91 and all(b["requests"] == 0 and b["p50_ms"] is None for b in later)


# --- log tails ---------------------------------------------------------------------------------

def test_log_tail_with_offsets_returns_only_new_text(live: SimpleNamespace) -> None:
    ops = live.ws.online_deployments
    tail = ops.log_tail("churn", "blue")
    assert isinstance(tail, LogChunk) and tail.instance in tail.instances and "ready" in tail.text
    log = live.home.logs / "churn" / "blue" / f"{tail.instance}.log"
    assert tail.offset == log.stat().st_size

    # Follow: append to the instance's log (as the instance would) and get exactly that back.
    follow = ops.log_tail("churn", "blue", instance=tail.instance, offset=log.stat().st_size)
    assert follow.text == ""
    with log.open("a") as fh:
        fh.write("marker one ✓\nmarker two\n")
    new = ops.log_tail("churn", "blue", instance=tail.instance, offset=follow.offset)
    assert new.text == "marker one ✓\nmarker two\n" and new.offset == log.stat().st_size

    # Small chunks from 0 put the whole file back together, multi-byte characters intact.
    text, offset = "", 0
    while True:
        part = ops.log_tail("churn", "blue", instance=tail.instance, offset=offset, max_bytes=7)
        if not part.text:
            break
        text, offset = text + part.text, part.offset
    assert text == log.read_text()

    # The tail of a file starts on a line; an offset past the end (file replaced) restarts at 0.
    last = ops.log_tail("churn", "blue", instance=tail.instance, max_bytes=16)
    assert last.text == "marker two\n"
    again = ops.log_tail("churn", "blue", instance=tail.instance, offset=log.stat().st_size + 10_000)
    assert again.text == log.read_text()[:65536]
    with pytest.raises(NotFound, match="instances with logs: blue-0"):
        ops.log_tail("churn", "blue", instance="blue-9")
    with pytest.raises(NotFound):
        ops.log_tail("churn", "ghost")


# --- jobs --------------------------------------------------------------------------------------

def test_watch_stops_on_the_stop_event_and_progress_reads_a_running_job(live: SimpleNamespace) -> None:
    ws = live.ws
    job = ws.batch_endpoints.invoke("oj-sales", live.data, deployment_name="slow")
    try:
        stop = threading.Event()
        seen: list[JobProgress] = []
        first = threading.Event()
        # The poll interval is long: only the stop event can end the wait between polls.
        setter = threading.Thread(target=lambda: first.wait(60) and stop.set())
        setter.start()
        for p in ws.jobs.watch(job.id, interval=600, stop=stop):
            seen.append(p)
            first.set()
        setter.join()
        assert len(seen) == 1 and not seen[0].done and seen[0].id == job.id
        assert list(ws.jobs.watch(job.id, stop=stop)) == []  # already stopped: no poll at all

        progress = ws.jobs.progress(job.id)
        assert progress.state in ("Queued", "Running", "NotStarted") and not progress.done
        assert job.id in {j.id for j in ws.snapshot(endpoint="oj-sales").jobs if not j.done}
        assert not job.wait(stop=stop).done  # a stopped wait returns at once
    finally:
        ws.jobs.cancel(job.id)
    states = [p.state for p in ws.jobs.watch(job.id, interval=0.2)]
    assert states[-1] == "Canceled"
    with pytest.raises(NotFound):
        ws.jobs.progress("no-such-job")


# --- async client and transport errors ------------------------------------------------------------

def test_async_workspace_reads_the_same_host(live: SimpleNamespace) -> None:
    ws = live.ws

    async def main() -> None:
        async with AsyncWorkspace(live.home) as aws:
            status, snap, page, hist, tail = await asyncio.gather(
                aws.status(), aws.snapshot(endpoint="churn"), aws.events_page(0, limit=5),
                aws.stats_history("churn"), aws.log_tail("churn", "blue"))
            assert status.pid == ws.status().pid and status.url == ws.url
            assert snap.endpoint("churn").deployment("blue").state == "Succeeded"
            assert isinstance(page, EventPage) and [e.id for e in page] == [e.id for e in ws.events_page(0, limit=5)]
            assert hist[0].deployment == "blue" and tail.instance == "blue-0"
            with pytest.raises(NotFound):
                await aws.snapshot(endpoint="ghost")

    asyncio.run(main())


def test_async_workspace_without_a_host_says_so(empty_home: Home) -> None:
    with pytest.raises(HostNotRunning, match="no host is running"):
        AsyncWorkspace(empty_home)


class _Silent:
    """A real TCP server that accepts and then either says nothing or hangs up at once."""

    def __init__(self, hang_up: bool) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hang_up = hang_up
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.hang_up:
                conn.recv(65536)
                conn.close()
            else:
                self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_transport_failures_map_to_the_exception_tree() -> None:
    silent, rude = _Silent(hang_up=False), _Silent(hang_up=True)
    try:
        sync = HostClient(silent.url, "token", timeout=0.3)
        with pytest.raises(HostTimeout, match="did not answer GET /api/v1/status in time") as err:
            sync.call("GET", "/status")
        assert isinstance(err.value, ToolkitError) and err.value.status_code == 504
        with pytest.raises(HostTimeout):
            sync.score("/endpoints/x/score", b"{}", "application/json")
        with pytest.raises(HostError, match="connection to the host"):
            HostClient(rude.url, "token").call("GET", "/status")
        port = free_port()  # nothing listens there
        with pytest.raises(HostNotRunning, match="cannot reach the host"):
            HostClient(f"http://127.0.0.1:{port}", "token").call("GET", "/status")

        async def main() -> None:
            client = AsyncHostClient(silent.url, "token", timeout=0.3)
            try:
                with pytest.raises(HostTimeout):
                    await client.call("GET", "/snapshot")
            finally:
                await client.aclose()
            refused = AsyncHostClient(f"http://127.0.0.1:{port}", "token")
            with pytest.raises(HostNotRunning):
                await refused.call("GET", "/status")
            await refused.aclose()

        asyncio.run(main())
    finally:
        silent.close()
        rude.close()
