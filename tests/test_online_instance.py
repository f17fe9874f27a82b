"""The instance process, for real: started as the supervisor starts it, called over its Unix socket."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from toolkit.demo.data import CHURN_FEATURES, churn_frame
from toolkit.home import Home
from toolkit.runtime.instance import LOAD_FAILED_EXIT_CODE, LOAD_FAILED_PREFIX
from toolkit.runtime.protocol import parse_request
from toolkit.runtime.batcher import MicroBatcher
from toolkit.runtime.scorer import Scorer

ROOT = Path(__file__).resolve().parents[1]
JSON = {"content-type": "application/json"}

SCRIPT = '''
import os, time
import mlflow.pyfunc

model = None

def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])

def run(data):
    if isinstance(data, dict) and "sleep" in data:
        time.sleep(data["sleep"])
        return {"slept": data["sleep"]}
    if isinstance(data, dict):
        return {"echo": data, "same_dir": os.environ["ENDPOINTS_MODEL_DIR"] == os.environ["AZUREML_MODEL_DIR"]}
    return model.predict(data)
'''


class Instance:
    def __init__(self, proc: subprocess.Popen[bytes], sock: str, log: Path) -> None:
        self.proc, self.sock, self.log = proc, sock, log
        self.client = httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://instance", timeout=30)

    def stats(self) -> dict[str, Any]:
        return self.client.get("/stats").json()


def _start(model_path: str, workdir: Path, **overrides: Any) -> tuple[subprocess.Popen[bytes], str, Path]:
    config = {
        "endpoint": "churn", "deployment": "blue", "instance_id": "blue-0", "model_path": model_path,
        "model_uri": "models:/churn/1", "code": None, "scoring_script": None,
        "batching": {"max_batch_size": 64, "max_batch_wait_ms": 0}, "request_timeout_ms": 5000,
        "max_concurrent_requests_per_instance": 64, "max_body_bytes": 1024 * 1024,
    }
    config.update(overrides)
    (workdir / "config.json").write_text(json.dumps(config))
    sock = str(workdir / "i.sock")
    log = workdir / "stderr.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.runtime.instance", "--uds", sock, "--config", str(workdir / "config.json")],
        cwd=ROOT, stderr=log.open("wb"), stdout=subprocess.DEVNULL,
    )
    return proc, sock, log


def _wait_ready(inst: Instance, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if inst.proc.poll() is not None:
            raise AssertionError(f"instance exited with {inst.proc.returncode}: {inst.log.read_text()}")
        try:
            if inst.client.get("/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("instance did not become ready")


def _stop(inst: Instance) -> None:
    inst.client.close()
    if inst.proc.poll() is None:
        inst.proc.terminate()
        try:
            inst.proc.wait(10)
        except subprocess.TimeoutExpired:
            inst.proc.kill()


@pytest.fixture(scope="module")
def churn_path(demo_registry: Path) -> str:
    from toolkit.registry import Registry

    return Registry(Home(demo_registry)).resolve("models:/churn/1").local_path


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~100 bytes: keep them short.
    d = Path(tempfile.mkdtemp(prefix="ep-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def churn(churn_path: str, workdir: Path) -> Iterator[Instance]:
    d = workdir / "churn"
    d.mkdir()
    inst = Instance(*_start(churn_path, d))
    # Before the model is loaded the instance is live but not ready.
    _wait_ready(inst)
    yield inst
    _stop(inst)


@pytest.fixture(scope="module")
def model(churn_path: str) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(churn_path)


def _split(df: pd.DataFrame) -> dict[str, Any]:
    return json.loads(df.to_json(orient="split", index=False, double_precision=15))


def test_every_format_equals_in_process_predict(churn: Instance, model: Any) -> None:
    df = churn_frame(n=5, seed=3)[CHURN_FEATURES]
    expected = model.predict(df).tolist()
    split = _split(df)
    records = [dict(zip(split["columns"], r)) for r in split["data"]]
    bodies = [
        {"dataframe_split": split}, {"dataframe_records": records}, {"instances": records},
        {"inputs": {c: [r[i] for r in split["data"]] for i, c in enumerate(split["columns"])}},
        {"input_data": split}, {"input_data": split["data"]}, {"input_data": records},
    ]
    for body in bodies:
        r = churn.client.post("/score", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": expected}
        assert r.headers["x-batch-size"] == "1" and r.headers["x-batch-rows"] == "5"
        assert r.headers["x-instance-id"] == "blue-0"
    r = churn.client.post("/invocations", content=df.to_csv(index=False), headers={"content-type": "text/csv"})
    assert r.json() == {"predictions": expected}
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    r = churn.client.post("/score", content=buf.getvalue(), headers={"content-type": "application/vnd.apache.parquet"})
    assert r.json() == {"predictions": expected}
    v2_types = {c: "BYTES" if c == "region" else "FP64" if c == "monthly_spend" else "INT64" for c in split["columns"]}
    v2 = {"id": "abc", "inputs": [{"name": c, "shape": [5], "datatype": v2_types[c], "data": [r[i] for r in split["data"]]}
                                  for i, c in enumerate(split["columns"])]}
    r = churn.client.post("/v2/infer", json=v2)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == expected and r.json()["id"] == "abc"
    meta = churn.client.get("/v2/model").json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"] and len(meta["inputs"]) == 8


def test_bad_requests_get_clear_errors_and_the_instance_stays_up(churn: Instance) -> None:
    good = {"dataframe_split": _split(churn_frame(n=1, seed=4)[CHURN_FEATURES])}
    bad_type = json.loads(json.dumps(good))
    bad_type["dataframe_split"]["data"][0][0] = "forty"
    missing = json.loads(json.dumps(good))
    missing["dataframe_split"]["columns"].pop(7)
    [row.pop(7) for row in missing["dataframe_split"]["data"]]
    cases = [
        (b'{"dataframe_split": {"columns": ["age"], ', JSON, 400, "line 1, column"),
        (json.dumps(bad_type).encode(), JSON, 400, "'age'"),
        (json.dumps(missing).encode(), JSON, 400, "'region'"),
        (b"age\n1\n", {"content-type": "application/xml"}, 415, "unsupported content type"),
        (b"{}", {"content-type": "application/json; charset=latin-1"}, 415, "UTF-8"),
    ]
    for body, headers, status, phrase in cases:
        r = churn.client.post("/score", content=body, headers=headers)
        assert r.status_code == status, r.text
        err = r.json()
        assert set(err) >= {"error_code", "message"} and phrase in err["message"], err
    big = b'{"inputs": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    r = churn.client.post("/score", content=big, headers=JSON)
    assert r.status_code == 413 and r.json()["error_code"] == "PayloadTooLarge"
    r = churn.client.post("/score", content=(b"x" * 65536 for _ in range(40)), headers=JSON)  # chunked, no length
    assert r.status_code == 413
    assert churn.client.get("/score").status_code == 405
    assert churn.client.get("/nope").status_code == 404
    assert churn.client.get("/health/live").status_code == 200
    assert churn.client.post("/score", json=good).status_code == 200
    stats = churn.stats()
    assert stats["errors_by_status"]["400"] >= 3 and stats["errors_by_status"]["413"] >= 2
    log = churn.log.read_text()
    assert "forty" not in log and "error 400 InvalidInput on /score column='age'" in log


def test_concurrent_requests_are_batched_and_one_bad_request_fails_alone(churn: Instance, model: Any) -> None:
    frames = [churn_frame(n=1 + i % 4, seed=100 + i)[CHURN_FEATURES] for i in range(40)]
    bodies = [{"dataframe_split": _split(f)} for f in frames]
    bad = 17
    bodies[bad]["dataframe_split"]["data"][0][4] = None  # NaN monthly_spend: the model raises
    before = churn.stats()

    async def fire() -> list[httpx.Response]:
        transport = httpx.AsyncHTTPTransport(uds=churn.sock)
        async with httpx.AsyncClient(transport=transport, base_url="http://instance", timeout=30) as c:
            return await asyncio.gather(*(c.post("/score", json=b) for b in bodies))

    responses = asyncio.run(fire())
    for i, (r, f) in enumerate(zip(responses, frames)):
        if i == bad:
            assert r.status_code == 424, r.text
            assert r.json()["error_code"] == "ModelError" and "NaN" in r.json()["message"]
        else:
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": model.predict(f).tolist()}
    stats = churn.stats()
    assert stats["max_batch_size_seen"] > 1
    assert stats["rows"] - before["rows"] >= sum(len(f) for f in frames)
    assert any(int(r.headers.get("x-batch-size", "1")) > 1 for r in responses)
    assert stats["in_flight"] == 0 and stats["predict_seconds"] > 0 and stats["model_load_seconds"] > 0


def test_scoring_script_gets_frames_raw_json_and_times_out(churn_path: str, workdir: Path, model: Any) -> None:
    d = workdir / "script"
    (d / "src").mkdir(parents=True)
    (d / "src" / "score.py").write_text(SCRIPT)
    inst = Instance(*_start(churn_path, d, code=str(d / "src"), scoring_script="score.py", request_timeout_ms=500,
                            max_stuck_predictions=1))
    try:
        _wait_ready(inst)
        df = churn_frame(n=3, seed=8)[CHURN_FEATURES]
        r = inst.client.post("/score", json={"dataframe_split": _split(df)})
        assert r.status_code == 200 and r.json() == {"predictions": model.predict(df).tolist()}
        r = inst.client.post("/score", json={"question": "hi"})
        assert r.json() == {"echo": {"question": "hi"}, "same_dir": True}
        r = inst.client.post("/score", json={"sleep": 2})
        assert r.status_code == 408 and r.json()["error_code"] == "RequestTimeout"
        # The runaway prediction still holds a thread: the next request runs on a spare one, and
        # with max_stuck_predictions=1 the instance asks to be restarted by failing liveness.
        r = inst.client.post("/score", json={"question": "still there?"})
        assert r.status_code == 200
        stats = inst.stats()
        assert stats["runaway_predictions"] == 1 and stats["errors_by_status"]["408"] == 1
        live = inst.client.get("/health/live")
        if stats["stuck_predictions"] == 1:
            assert live.status_code == 503 and inst.client.get("/health/ready").status_code == 503
        deadline = time.monotonic() + 30  # once the sleeping run() returns, the instance is live again
        while inst.client.get("/health/live").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert inst.stats()["stuck_predictions"] == 0
        # A prediction stuck for good must not keep the process from stopping when asked to.
        assert inst.client.post("/score", json={"sleep": 120}).status_code == 408
        inst.proc.terminate()
        assert inst.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful stop
        assert "stopped after" in inst.log.read_text()
    finally:
        _stop(inst)


def test_a_model_that_fails_to_load_exits_with_the_message(workdir: Path) -> None:
    d = workdir / "broken"
    (d / "model").mkdir(parents=True)
    (d / "model" / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: no_such_module_xyz\n")
    proc, sock, log = _start(str(d / "model"), d)
    assert proc.wait(90) == LOAD_FAILED_EXIT_CODE
    last = log.read_text().strip().splitlines()[-1]
    assert last.startswith(LOAD_FAILED_PREFIX) and "no_such_module_xyz" in last


def test_micro_batcher_in_process_matches_unbatched(churn_path: str) -> None:
    scorer = Scorer.load(churn_path)
    frames = [churn_frame(n=1 + i % 3, seed=200 + i)[CHURN_FEATURES] for i in range(12)]
    inputs = [parse_request(json.dumps({"dataframe_split": _split(f)}).encode(), "application/json", scorer.schema) for f in frames]

    async def go() -> list[Any]:
        batcher = MicroBatcher(scorer.predict, max_batch_size=64, max_batch_wait_ms=50, timeout_s=10)
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in inputs))
        finally:
            assert batcher.stats.batches < len(inputs)
            await batcher.close()

    for res, f in zip(asyncio.run(go()), frames):
        np.testing.assert_array_equal(res.preds, scorer.model.predict(f))
        assert res.batch_requests > 1


def test_before_the_model_loads_the_instance_is_live_but_not_ready(churn_path: str) -> None:
    from toolkit.runtime.config import InstanceConfig
    from toolkit.runtime.instance import InstanceApp

    app = InstanceApp(InstanceConfig.from_dict({"model_path": churn_path, "endpoint": "churn"}), log=lambda line: None)

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://instance") as c:
            return [await c.get("/health/live"), await c.get("/health/ready"), await c.post("/score", json={}),
                    await c.get("/stats")]

    live, ready, score, stats = asyncio.run(go())
    assert live.status_code == 200 and ready.status_code == 503 and ready.json() == {"status": "loading"}
    assert score.status_code == 503 and score.json()["error_code"] == "Unavailable"
    assert stats.json()["ready"] is False
