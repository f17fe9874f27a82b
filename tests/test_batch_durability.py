"""A host killed mid-job (SIGKILL) and a user's own Dask scheduler: real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil

from test_batch_jobs import MODEL, assert_same_rows, expected, slow_script
from toolkit.batch.service import BatchService
from toolkit.batch.testing import make_context, register_batch_deployment, wait_for_job
from toolkit.demo.data import write_oj_weekly_files
from toolkit.home import Home
from toolkit.store import Store

HOST_SCRIPT = '''
import asyncio, sys
from toolkit.home import Home
from toolkit.batch.service import BatchService
from toolkit.batch.testing import make_context, wait_for_job

async def main(mode, arg):
    ctx = make_context(Home.resolve())
    svc = BatchService(ctx, capacity=1, idle_timeout=2)
    await svc.start()
    if mode == "submit":
        job_id = (await svc.submit("oj-batch", None, arg, {}))["id"]
        print(job_id, flush=True)
    else:
        job_id = arg
    job = await wait_for_job(svc, job_id, timeout=300)
    print(job["state"], job["message"], flush=True)
    await svc.stop()

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
'''


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def test_host_killed_mid_job_resumes_with_every_row_once(home: Home, tmp_path: Path) -> None:
    files = write_oj_weekly_files(tmp_path / "weekly", weeks=12, stores=2)
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL, mini_batch_size=1, code_configuration=slow_script(tmp_path),
                              environment_variables={"SLOW_SCORE_S": "0.5"})
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(HOST_SCRIPT))
    store = Store(home.state_db)

    first = subprocess.Popen([sys.executable, str(script), "submit", str(tmp_path / "weekly")],
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    job_id = first.stdout.readline().strip()  # type: ignore[union-attr]
    assert job_id.startswith("oj-batch-")
    completed = lambda: [m for m in store.minibatches(job_id) if m["state"] == "Completed"]  # noqa: E731
    try:
        _wait(lambda: len(completed()) >= 3, 180, "no mini-batch finished")
    finally:
        children = psutil.Process(first.pid).children(recursive=True)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    before = {m["idx"]: m for m in completed()}
    # Dask worker processes notice their parent's death and exit; ours to clean up if not.
    _, alive = psutil.wait_procs(children, timeout=30)
    for p in alive:
        p.kill()
    job = store.get_job(job_id)
    assert job["state"] == "Running" and len(before) < 12

    second = subprocess.run([sys.executable, str(script), "resume", job_id], capture_output=True, text=True,
                            timeout=300, env=os.environ.copy())
    assert "Completed" in second.stdout, second.stdout + second.stderr[-3000:]

    job = store.get_job(job_id)
    got = pd.read_csv(Path(job["output"]) / "predictions.csv")
    assert_same_rows(got, expected(files))
    assert not got.duplicated(["file_name", "row"]).any()
    after = {m["idx"]: m for m in store.minibatches(job_id)}
    # Finished mini-batches were not scored again; only the rest were.
    assert all(after[i]["updated_at"] == m["updated_at"] for i, m in before.items())
    resumed = [e.message for e in store.events(job=job_id) if e.reason == "JobResumed"]
    assert resumed and resumed[0].startswith(f"{len(before)} of 12 mini-batches already done")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_job_on_a_separately_started_dask_scheduler(home: Home, tmp_path: Path) -> None:
    files = write_oj_weekly_files(tmp_path / "weekly", weeks=5, stores=3)
    port = _free_port()
    dask = str(Path(sys.executable).parent / "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait(lambda: _listening(port), 60, "dask scheduler did not start")
        procs.append(subprocess.Popen(
            [dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-dashboard",
             "--local-directory", str(tmp_path / "dask-worker")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ctx = make_context(home)
        register_batch_deployment(ctx, "oj-remote", "blue", MODEL, compute=f"tcp://127.0.0.1:{port}", mini_batch_size=2)

        async def main() -> None:
            svc = BatchService(ctx, capacity=1, idle_timeout=2)
            await svc.start()
            try:
                job = await svc.submit("oj-remote", None, str(tmp_path / "weekly"), {})
                done = await wait_for_job(svc, job["id"], timeout=180)
                assert done["state"] == "Completed", done["message"]
                assert_same_rows(pd.read_csv(done["outputs"]["predictions"]), expected(files))
                info = svc.cluster_info()
                assert info["local"]["workers"] == 0  # nothing ran on the host's own cluster
                assert info["remote"][0]["scheduler"] == f"tcp://127.0.0.1:{port}"
            finally:
                await svc.stop()

        asyncio.run(main())
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
