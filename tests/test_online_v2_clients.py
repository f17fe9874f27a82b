"""The Open Inference (V2) protocol as a real client speaks it: ``tritonclient.http`` against a real
gateway and real instances (JSON and binary tensors, metadata, versioned routes, errors)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest

from test_online_gateway_support import OnlineHost, auth, module_host, serve_churn
from toolkit.demo.data import CHURN_FEATURES, churn_frame

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is a test dependency (pip install -e .[dev])")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.timeout(600)

V2_TYPES = {"long": "INT64", "double": "FP64", "string": "BYTES"}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[OnlineHost]:
    yield from module_host(tmp_path_factory, demo_registry, "v2")


@pytest.fixture(scope="module")
def churn(host: OnlineHost) -> dict[str, str]:
    return serve_churn(host, {"blue": 100}, {"blue": 1, "green": 2})


@pytest.fixture
def client(host: OnlineHost) -> Iterator[Any]:
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{host.port}", network_timeout=60)
    try:
        yield c
    finally:
        c.close()


def _frame(rows: int) -> Any:
    return churn_frame(n=rows, seed=11)[CHURN_FEATURES].head(rows)


def _expected(host: OnlineHost, secrets: dict[str, str], deployment: str, rows: int) -> np.ndarray:
    """What the MLflow scoring route answers for the same rows (the reference)."""
    split = _frame(rows).to_dict(orient="split")
    body = json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}})
    r = httpx.post(f"{host.url}/endpoints/churn/score", content=body,
                   headers={**auth(secrets), "Content-Type": "application/json", "X-Deployment": deployment}, timeout=60)
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["predictions"])


def _inputs(metadata: dict[str, Any], rows: int, binary: bool) -> list[Any]:
    df = _frame(rows)
    out = []
    for spec in metadata["inputs"]:
        values = df[spec["name"]].to_numpy()
        if spec["datatype"] == "BYTES":
            values = values.astype(object)
        inp = httpclient.InferInput(spec["name"], [rows], spec["datatype"])
        inp.set_data_from_numpy(values, binary_data=binary)
        out.append(inp)
    return out


# tritonclient writes Inference-Header-Content-Length into the headers dict it is given, so every
# call below gets a fresh copy of the auth headers.


def test_liveness_and_metadata(client: Any, churn: dict[str, str]) -> None:
    h = auth(churn)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn", headers=dict(h))
    assert client.is_model_ready("churn", model_version="green", headers=dict(h))
    server = client.get_server_metadata()
    assert server["name"] == "endpoints-toolkit" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("churn", headers=dict(h))
    assert meta["name"] == "churn" and meta["versions"] == ["blue", "green"]
    assert {(i["name"], i["datatype"]) for i in meta["inputs"]} >= {("age", "INT64"), ("monthly_spend", "FP64"),
                                                                     ("region", "BYTES")}
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    versioned = client.get_model_metadata("churn", model_version="green", headers=dict(h))
    assert versioned["name"] == "churn" and len(versioned["inputs"]) == 8


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_the_mlflow_route(host: OnlineHost, client: Any, churn: dict[str, str], binary: bool) -> None:
    h = auth(churn)
    meta = client.get_model_metadata("churn", headers=dict(h))
    rows = 7
    expected = _expected(host, churn, "blue", rows)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=binary)]
    result = client.infer("churn", _inputs(meta, rows, binary), outputs=outputs, request_id="req-1", headers=dict(h))
    got = result.as_numpy("predict")
    np.testing.assert_array_equal(got, expected)
    response = result.get_response()
    assert response["id"] == "req-1" and response["model_name"] == "churn"
    assert ("binary_data_size" in response["outputs"][0].get("parameters", {})) is binary

    # tritonclient's default: binary inputs, no outputs named -> every output as binary data.
    default = client.infer("churn", _inputs(meta, rows, True), headers=dict(h))
    np.testing.assert_array_equal(default.as_numpy("predict"), expected)

    # A version is a deployment of the endpoint: green serves churn v2.
    green = client.infer("churn", _inputs(meta, rows, binary), model_version="green", headers=dict(h))
    np.testing.assert_array_equal(green.as_numpy("predict"), _expected(host, churn, "green", rows))


def test_compressed_requests(client: Any, churn: dict[str, str], host: OnlineHost) -> None:
    h = auth(churn)
    meta = client.get_model_metadata("churn", headers=dict(h))
    expected = _expected(host, churn, "blue", 3)
    for algorithm in ("gzip", "deflate"):
        result = client.infer("churn", _inputs(meta, 3, True), headers=dict(h), request_compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("predict"), expected)


def test_errors_read_as_messages(client: Any, churn: dict[str, str]) -> None:
    h = auth(churn)
    meta = client.get_model_metadata("churn", headers=dict(h))
    inputs = _inputs(meta, 2, False)
    wrong = httpclient.InferInput("age", [2], "FP64")
    wrong.set_data_from_numpy(np.array([30.0, 40.0]), binary_data=False)
    inputs[[i.name() for i in inputs].index("age")] = wrong
    with pytest.raises(InferenceServerException) as info:
        client.infer("churn", inputs, headers=dict(h))
    assert info.value.status() == "400"
    assert "declared FP64" in info.value.message() and "INT64" in info.value.message()
    assert "decoding" not in info.value.message()

    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("nope", headers=dict(h))
    assert info.value.status() == "404" and "nope" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.infer("churn", _inputs(meta, 2, True), model_version="red", headers=dict(h))
    assert info.value.status() == "404" and "blue, green" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("churn")  # no key
    assert info.value.status() == "401" and info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.infer("churn", _inputs(meta, 2, True), headers=dict(h),
                     outputs=[httpclient.InferRequestedOutput("probabilities")])
    assert info.value.status() == "400" and "predict" in info.value.message()


def _raw(host: OnlineHost, secrets: dict[str, str], header: dict[str, Any], tail: bytes,
         json_len: int | None = None, **headers: str) -> httpx.Response:
    head = json.dumps(header).encode()
    hdrs = {**auth(secrets), **headers}
    if json_len is not None or tail:
        hdrs["Inference-Header-Content-Length"] = str(len(head) if json_len is None else json_len)
    return httpx.post(f"{host.url}/v2/models/churn/infer", content=head + tail, headers=hdrs, timeout=60)


def test_binary_requests_are_checked(host: OnlineHost, churn: dict[str, str]) -> None:
    """Hand-made binary bodies: each inconsistency is a 400 naming it, never a 500."""
    ages = np.array([30, 40], dtype="<i8").tobytes()
    base = {"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": len(ages)}}]}
    r = _raw(host, churn, base, ages[:-1])
    assert r.status_code == 400 and "binary_data_size" in r.json()["error"]
    r = _raw(host, churn, base, ages + b"xx")
    assert r.status_code == 400 and "add up to" in r.json()["error"]
    r = _raw(host, churn, base, ages, json_len=10 ** 9)
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]
    r = _raw(host, churn, base, ages, json_len=3)
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    bad_bytes = {"inputs": [{"name": "region", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]}
    r = _raw(host, churn, bad_bytes, struct.pack("<I", 99) + b"ab")
    assert r.status_code == 400 and "BYTES element 0" in r.json()["error"]
    r = _raw(host, churn, base, b"")  # binary size declared but no header at all
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]
    r = httpx.post(f"{host.url}/v2/models/churn/infer", content=gzip.compress(b"x") + b"junk",
                   headers={**auth(churn), "Content-Encoding": "gzip"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]
    r = httpx.post(f"{host.url}/v2/models/churn/infer", content=b"{}", headers={**auth(churn), "Content-Encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding" in r.json()["error"]
    # Declared datatypes are checked against JSON data too.
    for datatype, data, needle in (("INT64", [1.5], "whole numbers"), ("INT8", [300], "-128 to 127"),
                                   ("BOOL", [1], "true or false"), ("BYTES", [1], "strings"), ("FP64", ["1"], "numbers")):
        doc = {"inputs": [{"name": "age", "shape": [1], "datatype": datatype, "data": data}]}
        r = _raw(host, churn, doc, b"")
        assert r.status_code == 400 and needle in r.json()["error"], (datatype, r.text)


def test_v2_routes_answer_with_allow_and_data_plane_headers(host: OnlineHost, churn: dict[str, str]) -> None:
    h = {**auth(churn), "X-Request-Id": "trace-7"}
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/churn/ready",
                 "/v2/models/churn/versions/blue/ready", "/metrics", "/v2/models/churn/nothing-here"):
        r = httpx.get(f"{host.url}{path}", headers=dict(h))
        assert r.headers["x-request-id"] == "trace-7", path
        assert "x-deployment" in r.headers, path
    assert httpx.get(f"{host.url}/v2/models/churn/ready", headers=dict(h)).headers["x-deployment"] == "blue"
    r = httpx.get(f"{host.url}/v2/models/churn/nothing-here", headers=dict(h))
    assert r.status_code == 404 and r.json()["error"]
    for method, path, allow in (("DELETE", "/v2/health/live", "GET, HEAD"), ("GET", "/v2/models/churn/infer", "POST"),
                                ("PUT", "/endpoints/churn/score", "POST"), ("POST", "/v2", "GET, HEAD"),
                                ("POST", "/metrics", "GET, HEAD"), ("POST", "/endpoints/churn/swagger.json", "GET, HEAD")):
        r = httpx.request(method, f"{host.url}{path}", headers=dict(h))
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.headers)
        assert r.json()["error_code"] == "MethodNotAllowed"
        if path.startswith("/v2"):
            assert r.json()["error"]
