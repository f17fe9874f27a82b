"""Batch jobs end to end on a real Dask LocalCluster with the registry's demo models."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from toolkit.batch.service import BatchService
from toolkit.batch.testing import make_context, register_batch_deployment, wait_for_job
from toolkit.demo.data import OJ_FEATURES, write_oj_weekly_files
from toolkit.errors import Conflict, InvalidInput, InvalidSpec, NotFound
from toolkit.home import Home

MODEL = "models:/oj-sales@production"

SLOW_SCRIPT = '''
import os, time
import mlflow.pyfunc
import pandas as pd

model = None

def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])

def run(mini_batch):
    time.sleep(float(os.environ.get("SLOW_SCORE_S", "0.4")))
    out = []
    for path in mini_batch:
        df = pd.read_csv(path)
        out.append(pd.DataFrame({"file_name": os.path.basename(path), "row": range(len(df)),
                                 "prediction": model.predict(df)}))
    return pd.concat(out, ignore_index=True)
'''


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())


async def until(predicate: Callable[[], Any], what: str, timeout: float = 120.0, every: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return that); TimeoutError naming
    ``what`` after ``timeout`` seconds.  Tests wait on state, never on a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(every)


def expected(files: list[Path]) -> pd.DataFrame:
    """Every input row, in order, with the prediction the model gives in this process."""
    model = mlflow.pyfunc.load_model("models:/oj-sales/1")
    frames = []
    for f in files:
        df = pd.read_csv(f) if f.suffix == ".csv" else pd.read_parquet(f)
        frames.append(pd.DataFrame({"file_name": f.name, "row": range(len(df)), "prediction": model.predict(df[OJ_FEATURES])}))
    return pd.concat(frames, ignore_index=True)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    assert got.file_name.tolist() == want.file_name.tolist()
    assert got.row.tolist() == want.row.tolist()
    assert np.allclose(got.prediction.to_numpy(), want.prediction.to_numpy())


def slow_script(tmp_path: Path) -> dict[str, Any]:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(textwrap.dedent(SLOW_SCRIPT))
    return {"code": str(code), "scoring_script": "score.py"}


def test_twenty_csv_files_in_order_then_rows_split_and_scale_to_zero(home: Home, tmp_path: Path) -> None:
    files = write_oj_weekly_files(tmp_path / "weekly", weeks=20, stores=4)
    pq_files = write_oj_weekly_files(tmp_path / "weekly-pq", weeks=3, stores=10, fmt="parquet")
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL, mini_batch_size=3,
                              resources={"instance_count": 2})

    async def main() -> None:
        svc = BatchService(ctx, capacity=2, idle_timeout=2)
        await svc.start()
        try:
            job = await svc.submit("oj-batch", None, str(tmp_path / "weekly"), {})
            assert job["state"] in ("Queued", "Running") and job["deployment"] == "blue"
            assert job["id"].startswith("oj-batch-")
            done = await wait_for_job(svc, job["id"])
            assert done["state"] == "Completed", done["message"]
            assert done["progress"]["total_minibatches"] == 7 and done["progress"]["rows"] == 20 * 4 * 3
            got = pd.read_csv(done["outputs"]["predictions"])
            assert list(got.columns) == ["file_name", "row", "prediction"]
            assert_same_rows(got, expected(files))
            overview = json.loads(Path(done["outputs"]["overview"]).read_text())
            assert overview["progress"]["completed"] == 7
            # Speed and where the workers' time went, for a UI to show.
            prog = done["progress"]
            assert prog["rows_per_s"] > 0 and prog["eta_s"] == 0
            assert set(prog["worker_seconds"]) == {"read", "predict", "write"}
            assert all(v > 0 for v in prog["worker_seconds"].values())
            assert json.loads(Path(done["outputs"]["summary"]).read_text())["rows"] == 240

            # The model was loaded once per worker process, not once per mini-batch.
            pool = next(iter(svc.compute.pools.values()))
            loaded = await pool.client.run(_loaded_models)
            assert loaded and all(n <= 1 for n in loaded.values())
            # Workers were forked by the warm fork server (their parent), not spawned by the host.
            await svc.workers_warm()
            assert svc.cluster_info()["local"]["worker_start"] == "fork server"
            parents = await pool.client.run(_parent_pid)
            assert parents and os.getpid() not in parents.values()
            # Workers run with Dask's housekeeping turned down (no stack sampler every 10 ms).
            housekeeping = await pool.client.run(_housekeeping)
            assert housekeeping and all(h == (False, "500ms") for h in housekeeping.values())

            # Rows split (Parquet, 10 rows a mini-batch) into a Parquet output, with overrides.
            out = tmp_path / "pq-out"
            job2 = await svc.submit("oj-batch", "blue", str(tmp_path / "weekly-pq" / "*.parquet"),
                                    {"mini_batch_rows": 10, "output_file_name": "predictions.parquet", "output": str(out)})
            done2 = await wait_for_job(svc, job2["id"])
            assert done2["state"] == "Completed", done2["message"]
            assert done2["progress"]["total_minibatches"] == 9
            assert_same_rows(pd.read_parquet(out / "predictions.parquet"), expected(pq_files))

            # No job: the local cluster retires its workers within the idle timeout.
            await until(lambda: svc.cluster_info()["local"]["workers"] == 0, "idle workers retired",
                        timeout=2 + 15, every=0.2)
            assert any(e.reason == "ClusterScaled" for e in ctx.store.events(limit=1000))
        finally:
            await svc.stop()

    run(main)


def _parent_pid() -> int:
    return os.getppid()


def _housekeeping() -> tuple[bool, str]:
    import dask

    return dask.config.get("distributed.worker.profile.enabled"), dask.config.get("distributed.worker.memory.monitor-interval")


def _loaded_models() -> int:
    from toolkit.batch.task import loaded_models

    return len(loaded_models())


def test_unreadable_file_with_and_without_error_threshold(home: Home, tmp_path: Path) -> None:
    data = tmp_path / "mixed"
    write_oj_weekly_files(data, weeks=4, stores=3)
    (data / "week-02b.txt").write_text("not a table")
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL, mini_batch_size=2, error_threshold=-1,
                              retry_settings={"max_retries": 1, "timeout": 60})

    async def main() -> None:
        svc = BatchService(ctx, capacity=1, idle_timeout=2)
        await svc.start()
        try:
            job = await svc.submit("oj-batch", None, str(data), {})
            done = await wait_for_job(svc, job["id"])
            assert done["state"] == "Completed", done["message"]
            assert done["progress"]["failed_files"] == 1 and "1 file(s) failed" in done["message"]
            assert done["progress"]["rows"] == 4 * 3 * 3  # every row of the readable files
            logs = list(Path(done["outputs"]["errors"]).iterdir())
            assert [p.name for p in logs] == ["week-02b.txt.log"]
            assert "week-02b.txt" in logs[0].read_text() and "unsupported file type" in logs[0].read_text()
            got = pd.read_csv(done["outputs"]["predictions"])
            assert "week-02b.txt" not in set(got.file_name)

            job = await svc.submit("oj-batch", None, str(data), {"error_threshold": 0})
            failed = await wait_for_job(svc, job["id"])
            assert failed["state"] == "Failed"
            assert "error_threshold 0 exceeded" in failed["message"] and "week-02b.txt" in failed["message"]
            assert any(e.reason == "JobFailed" for e in ctx.store.events(job=job["id"]))
        finally:
            await svc.stop()

    run(main)


def test_worker_killed_mid_job_every_row_exactly_once(home: Home, tmp_path: Path) -> None:
    files = write_oj_weekly_files(tmp_path / "weekly", weeks=12, stores=2)
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL, mini_batch_size=1, code_configuration=slow_script(tmp_path),
                              environment_variables={"SLOW_SCORE_S": "0.5"}, resources={"instance_count": 1})

    async def main() -> None:
        svc = BatchService(ctx, capacity=1, idle_timeout=2)
        await svc.start()
        try:
            job = await svc.submit("oj-batch", None, str(tmp_path / "weekly"), {})
            await until(lambda: svc.job(job["id"])["progress"].get("completed", 0) >= 3, "3 mini-batches done",
                        timeout=180, every=0.1)
            pids = svc.cluster_info()["local"]["pools"][0]["pids"]
            assert pids
            os.kill(pids[0], signal.SIGKILL)
            done = await wait_for_job(svc, job["id"], timeout=180)
            assert done["state"] == "Completed", done["message"]
            got = pd.read_csv(done["outputs"]["predictions"])
            assert_same_rows(got, expected(files))
            assert not got.duplicated(["file_name", "row"]).any()
            # A scoring script's time counts as "run" (it reads and predicts itself).
            assert set(done["progress"]["worker_seconds"]) == {"run", "write"}
        finally:
            await svc.stop()

    run(main)


def test_two_jobs_on_a_cluster_that_fits_one_and_cancel(home: Home, tmp_path: Path) -> None:
    write_oj_weekly_files(tmp_path / "weekly", weeks=4, stores=2)
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL, mini_batch_size=1, code_configuration=slow_script(tmp_path),
                              environment_variables={"SLOW_SCORE_S": "0.3"})

    async def main() -> None:
        svc = BatchService(ctx, capacity=1, idle_timeout=2)
        await svc.start()
        try:
            a, b = await asyncio.gather(
                svc.submit("oj-batch", None, str(tmp_path / "weekly"), {}),
                svc.submit("oj-batch", None, str(tmp_path / "weekly"), {}),
            )
            # Both were invoked at once; whichever was persisted first runs, the other waits.  Wait
            # for one to be running (a state, not a time), then look at both in one snapshot.
            def one_running() -> list[dict[str, Any]] | None:
                jobs = sorted((svc.job(a["id"]), svc.job(b["id"])), key=lambda j: j["state"] != "Running")
                return jobs if jobs[0]["state"] == "Running" else None

            first, second = await until(one_running, "one of two jobs running")
            assert first["state"] == "Running"
            assert second["state"] == "Queued" and second["queue_position"] == 1
            third = await svc.submit("oj-batch", None, str(tmp_path / "weekly"), {})
            canceled = await svc.cancel(third["id"])
            assert canceled["state"] == "Canceled"

            done1 = await wait_for_job(svc, first["id"])
            seen: set[str] = set()

            def second_finished() -> dict[str, Any] | None:
                job = svc.job(second["id"])
                seen.add(job["state"])
                return job if job["state"] in ("Completed", "Failed") else None

            done2 = await until(second_finished, "the queued job to finish", every=0.1)
            seen_running = "Running" in seen
            assert done1["state"] == done2["state"] == "Completed"
            assert seen_running and done2["started_at"] >= done1["ended_at"] - 0.5

            # Cancel a running job.
            fourth = await svc.submit("oj-batch", None, str(tmp_path / "weekly"), {})
            await wait_for_job(svc, fourth["id"], states=("Running",))
            await svc.cancel(fourth["id"])
            assert (await wait_for_job(svc, fourth["id"]))["state"] == "Canceled"
            with pytest.raises(Conflict):
                await svc.cancel(fourth["id"])
        finally:
            await svc.stop()

    run(main)


def test_submit_validation_and_existing_output_untouched(home: Home, tmp_path: Path) -> None:
    data = tmp_path / "weekly"
    write_oj_weekly_files(data, weeks=2, stores=2)
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL)
    register_batch_deployment(ctx, "no-default", "green", MODEL, default=False)
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")

    async def main() -> None:
        svc = BatchService(ctx, capacity=1, idle_timeout=2)  # not started: nothing may run
        with pytest.raises(Conflict, match="taken"):
            await svc.submit("oj-batch", None, str(data), {"output": str(existing)})
        with pytest.raises(NotFound, match="nope"):
            await svc.submit("oj-batch", "nope", str(data), {})
        with pytest.raises(NotFound, match="ghost"):
            await svc.submit("ghost", None, str(data), {})
        with pytest.raises(InvalidSpec, match="no default deployment"):
            await svc.submit("no-default", None, str(data), {})
        with pytest.raises(InvalidInput, match="missing-folder"):
            await svc.submit("oj-batch", None, str(tmp_path / "missing-folder"), {})
        with pytest.raises(InvalidSpec, match="overrides.colour"):
            await svc.submit("oj-batch", None, str(data), {"colour": "red"})
        assert ctx.store.list_jobs() == []
        assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]
        assert (existing / "keep.txt").read_text() == "mine"

    run(main)


def test_timeout_retries_then_fails_only_that_minibatch(home: Home, tmp_path: Path) -> None:
    data = tmp_path / "weekly"
    write_oj_weekly_files(data, weeks=1, stores=2)
    ctx = make_context(home)
    register_batch_deployment(ctx, "oj-batch", "blue", MODEL, code_configuration=slow_script(tmp_path),
                              environment_variables={"SLOW_SCORE_S": "60"},
                              retry_settings={"max_retries": 1, "timeout": 2})

    async def main() -> None:
        svc = BatchService(ctx, capacity=1, idle_timeout=2)
        await svc.start()
        try:
            job = await svc.submit("oj-batch", None, str(data), {})
            done = await wait_for_job(svc, job["id"], timeout=120)
            # Its only mini-batch (its only file) failed: a job that scored nothing is not a success.
            assert done["state"] == "Failed" and done["progress"]["failed"] == 1
            assert "every input file failed (1 of 1)" in done["message"]
            reasons = [e.reason for e in ctx.store.events(job=job["id"])]
            assert reasons.count("MiniBatchRetried") == 1 and reasons.count("MiniBatchFailed") == 1
            log = (Path(done["outputs"]["errors"]) / "week-01.csv.log").read_text()
            assert "timed out after 2s" in log
        finally:
            await svc.stop()

    run(main)
