"""Hostile and broken input on the data plane: always a 4xx with a JSON message, never a 500.

Hand-made bodies (deep nesting, huge integers, header-only CSV, ...), a bounded schemathesis run
against the endpoint's own OpenAPI document, the per-request log budget, and /metrics series that
leave with a deleted endpoint.  A real gateway and a real instance, as in the gateway tests.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_online_gateway_support import OnlineHost, auth, churn_body, fire, module_host, serve_churn
from toolkit.demo.data import CHURN_FEATURES, churn_frame
from toolkit.runtime.logbudget import LineBudget
from toolkit.online.metrics import Metrics

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[OnlineHost]:
    yield from module_host(tmp_path_factory, demo_registry, "bad")


@pytest.fixture(scope="module")
def churn(host: OnlineHost) -> dict[str, str]:
    return serve_churn(host, {"blue": 100})


def _v2(data: str) -> bytes:
    return ('{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": ' + data + "}]}").encode()


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 100_000
ROW = churn_frame(n=1, seed=2)[CHURN_FEATURES].to_dict(orient="records")[0]
CSV_HEADER = ",".join(CHURN_FEATURES) + "\n"

# (name, path, body, content type, status, a word the message must hold)
CASES = [
    ("deep json", "/endpoints/churn/score", DEEP.encode(), "application/json", 400, "deeply"),
    ("deep inside a format", "/endpoints/churn/score", ('{"dataframe_split": {"data": ' + DEEP + "}}").encode(),
     "application/json", 400, "deeply"),
    ("deep v2", "/v2/models/churn/infer", _v2(DEEP), "application/json", 400, "deeply"),
    ("100000-digit integer", "/endpoints/churn/score", ('{"inputs": {"age": [' + HUGE + "]}}").encode(),
     "application/json", 400, "100000 digits"),
    ("100000-digit integer v2", "/v2/models/churn/infer", _v2("[" + HUGE + "]"), "application/json", 400, "digits"),
    ("4000-digit integer in a double column", "/endpoints/churn/score",
     json.dumps({"dataframe_records": [{**ROW, "monthly_spend": 10 ** 4000}]}).encode(), "application/json", 400,
     "monthly_spend"),
    ("4000-digit integer in a long column", "/endpoints/churn/score",
     json.dumps({"dataframe_records": [{**ROW, "age": 10 ** 4000}]}).encode(), "application/json", 400, "age"),
    ("1e400 in a long column", "/endpoints/churn/score",
     json.dumps({"dataframe_records": [ROW]}).replace(str(ROW["age"]), "1e400", 1).encode(), "application/json", 400, "age"),
    ("NaN in a long column", "/endpoints/churn/score",
     json.dumps({"dataframe_records": [{**ROW, "age": float("nan")}]}).encode(), "application/json", 400, "age"),
    ("2.5 in a long column", "/endpoints/churn/score",
     json.dumps({"dataframe_records": [{**ROW, "age": 2.5}]}).encode(), "application/json", 400, "whole number"),
    ("header-only CSV", "/endpoints/churn/score", CSV_HEADER.encode(), "text/csv", 400, "no data rows"),
    ("empty CSV", "/endpoints/churn/score", b"", "text/csv", 400, "empty"),
    ("zero-row Parquet", "/endpoints/churn/score", _parquet(churn_frame(n=1)[CHURN_FEATURES].head(0)),
     "application/vnd.apache.parquet", 400, "no rows"),
    ("empty dataframe_records", "/endpoints/churn/score", b'{"dataframe_records": []}', "application/json", 400, "no rows"),
    ("empty v2 input", "/v2/models/churn/infer", b'{"inputs": [{"name": "age", "shape": [0], "datatype": "INT64", "data": []}]}',
     "application/json", 400, "age"),
    ("invalid UTF-8", "/endpoints/churn/score", b'{"inputs": "\xff"}', "application/json", 400, "UTF-8"),
    ("binary garbage as CSV", "/endpoints/churn/score", bytes(range(256)) * 4, "text/csv", 400, "CSV"),
    ("binary garbage as Parquet", "/endpoints/churn/score", b"PAR1" + bytes(range(256)), "application/vnd.apache.parquet",
     400, "Parquet"),
    ("latin-1 charset", "/endpoints/churn/score", b"{}", "application/json; charset=latin-1", 415, "UTF-8"),
    ("v2 shape of booleans", "/v2/models/churn/infer",
     b'{"inputs": [{"name": "age", "shape": [true], "datatype": "INT64", "data": [1]}]}', "application/json", 400, "shape"),
    ("v2 id that is not a string", "/v2/models/churn/infer",
     b'{"id": {}, "inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [1]}]}', "application/json", 400, "id"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hand_made_inputs_get_a_4xx(host: OnlineHost, churn: dict[str, str],
                                    case: tuple[str, str, bytes, str, int, str]) -> None:
    _, path, body, ctype, status, needle = case
    r = httpx.post(f"{host.url}{path}", content=body, timeout=60,
                   headers={**auth(churn), "Content-Type": ctype, "X-Request-Id": "bad-1"})
    assert r.status_code == status, r.text[:500]
    doc = r.json()
    assert needle in doc["message"], doc
    assert doc["error_code"] in ("InvalidInput", "UnsupportedMediaType")
    assert r.headers["x-request-id"] == "bad-1" and r.headers["x-deployment"] == "blue"
    if path.startswith("/v2/"):
        assert doc["error"] == doc["message"]


def test_error_log_lines_are_budgeted(host: OnlineHost, churn: dict[str, str]) -> None:
    budget = LineBudget(limit=2, window=0.2)
    assert [budget.take() for _ in range(5)] == [(True, 0), (True, 0), (False, 0), (False, 0), (False, 0)]
    time.sleep(0.25)  # a new window: the next line says how many were left out
    assert budget.take() == (True, 3)

    replies = fire(f"{host.url}/endpoints/churn/score", 300, concurrency=8, body=b'{"nope": 1}', headers=auth(churn))
    assert {r.status for r in replies} == {400}
    logs = host.on_loop(lambda: host.service.logs("churn", "blue", 2000))
    lines = [ln for ln in logs.splitlines() if " error 4" in ln]
    assert 0 < len(lines) <= 2 * LineBudget().limit, len(lines)  # not one per request


def _series(host: OnlineHost) -> set[tuple[str, str, str]]:
    text = httpx.get(f"{host.url}/metrics").text
    return {(s.name, s.labels.get("endpoint", ""), s.labels.get("deployment", ""))
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_a_deleted_endpoints_metrics_are_removed(host: OnlineHost, churn: dict[str, str]) -> None:
    secrets = host.create_endpoint("short-lived")
    r = httpx.post(f"{host.url}/endpoints/short-lived/score", content=churn_body(1), headers=auth(secrets))
    assert r.status_code == 404  # no deployment takes traffic: still a counted request
    assert any(e == "short-lived" for _, e, _ in _series(host))
    host.call(host.service.endpoint_deleted("short-lived"))
    assert not any(e == "short-lived" for _, e, _ in _series(host))
    assert any(e == "churn" for _, e, _ in _series(host))  # the others stay

    metrics = Metrics(lambda: [])
    for dep in ("blue", "green"):
        metrics.on_request("e1", dep, 200, 0.01)
        metrics.on_batch("e1", dep, 2)
        metrics.in_flight_gauge("e1", dep).inc()
    metrics.forget("e1", "green")
    text = metrics.render().decode()
    assert 'deployment="blue"' in text and 'deployment="green"' not in text
    metrics.on_request("e1", "green", 200, 0.01)  # a new deployment of the same name starts from zero
    assert 'endpoints_requests_total{deployment="green",endpoint="e1",status="200"} 1.0' in metrics.render().decode()


def test_the_swagger_matches_what_the_server_accepts(host: OnlineHost, churn: dict[str, str], tmp_path: Path) -> None:
    """A bounded, deterministic schemathesis run against the endpoint's own OpenAPI document.

    Checks: no 5xx, documented status codes, content types and headers, responses matching their
    schemas, 405 with Allow for other methods, and schema-violating bodies refused.  Not checked:
    that every schema-valid body is accepted, because OpenAPI 3.0 cannot say that a row's third
    value is the integer column, that ``index`` has one label per row, or that a model refuses
    the NaN a null double becomes (a 424 from the model).
    """
    pytest.importorskip("schemathesis", reason="schemathesis is a test dependency (pip install -e .[dev])")
    r = httpx.get(f"{host.url}/endpoints/churn/swagger.json", headers=auth(churn))
    assert r.status_code == 200
    doc = r.json()
    split = doc["components"]["schemas"]["DataframeSplit"]
    assert split["properties"]["data"]["minItems"] == 1 and split["additionalProperties"] is False
    spec = tmp_path / "swagger.json"
    spec.write_text(r.text)
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", str(spec), "--url", host.url,
           "--header", f"Authorization: Bearer {churn['primary_key']}",
           "--checks", "all", "--exclude-checks", "positive_data_acceptance",
           "--max-examples", "30", "--generation-deterministic", "--workers", "1",
           "--phases", "examples,coverage,fuzzing", "--request-timeout", "20", "--no-color"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert churn["primary_key"] not in out
    assert run.returncode == 0, out[-6000:]
    assert " generated" in out  # it did run cases
