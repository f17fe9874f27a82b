"""Control-plane validation: traffic naming unknown deployments, booleans that are not numbers,
spec files that are not YAML text, typed and documented OpenAPI, and a host log that a flood of
bad requests cannot grow without bound.  Real host, real HTTP, real files, real CLI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import run_cli
from toolkit.errors import InvalidSpec
from toolkit.host.logs import RateLimitFilter
from toolkit.specs import OnlineDeployment, OnlineEndpoint, load_spec, parse_spec, read_spec_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _admin(ws) -> httpx.Client:
    return httpx.Client(base_url=f"{ws.url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {ws.home.admin_token()}"})


# --- traffic naming deployments that do not exist ---------------------------------------------


def test_traffic_and_mirror_entries_must_name_existing_deployments(workspace):
    ws = workspace
    with _admin(ws) as api:
        r = api.put("/online-endpoints/churn", json={"name": "churn", "traffic": {"ghost": 0}})
        assert r.status_code == 400
        assert r.json()["message"].startswith("traffic.ghost: endpoint 'churn' has no deployment named 'ghost'")
        assert api.get("/online-endpoints/churn").status_code == 404  # nothing was created

        assert api.put("/online-endpoints/churn", json={"name": "churn"}).status_code == 200
        # Returns at once (the instance starts in the background): the name exists from now on.
        dep = {"name": "blue", "endpoint_name": "churn", "model": "models:/churn/1"}
        assert api.put("/online-endpoints/churn/deployments/blue", json=dep).status_code == 200

        for body, entry in [
            ({"traffic": {"blue": 100, "ghost": 0}}, "traffic.ghost"),
            ({"mirror_traffic": {"ghost": 0}}, "mirror_traffic.ghost"),
            ({"traffic": {"blue": 100}, "mirror_traffic": {"gren": 10}}, "mirror_traffic.gren"),
        ]:
            r = api.post("/online-endpoints/churn/traffic", json=body)
            assert r.status_code == 400, r.text
            message = r.json()["message"]
            assert message.startswith(f"{entry}: endpoint 'churn' has no deployment named") and "blue" in message
        r = api.put("/online-endpoints/churn", json={"name": "churn", "mirror_traffic": {"ghost": 0}})
        assert r.status_code == 400 and r.json()["message"].startswith("mirror_traffic.ghost:")
        assert api.get("/online-endpoints/churn").json()["traffic"] == {}  # nothing half-applied

        ok = api.post("/online-endpoints/churn/traffic", json={"traffic": {"blue": 100}})
        assert ok.status_code == 200 and ok.json()["traffic"] == {"blue": 100}
    with pytest.raises(InvalidSpec, match="traffic.ghost: endpoint 'churn' has no deployment named 'ghost'"):
        ws.online_endpoints.update_traffic("churn", {"blue": 100, "ghost": 0})


# --- booleans are not numbers -----------------------------------------------------------------


def test_booleans_are_refused_where_counts_and_percentages_are_expected(workspace):
    ws = workspace
    ws.batch_endpoints.create_or_update({"name": "oj-sales"})
    ws.batch_deployments.create_or_update({"name": "forest", "endpoint_name": "oj-sales", "model": "models:/oj-sales/1"})
    dep = {"name": "blue", "endpoint_name": "churn", "model": "models:/churn/1"}
    cases = [
        ("PUT", "/online-endpoints/churn", {"name": "churn", "traffic": {"blue": True}}, "traffic.blue"),
        ("POST", "/online-endpoints/churn/traffic", {"traffic": {"blue": True}}, "traffic.blue"),
        ("POST", "/online-endpoints/churn/traffic", {"mirror_traffic": {"blue": False}}, "mirror_traffic.blue"),
        ("PUT", "/online-endpoints/churn/deployments/blue", {**dep, "instance_count": True}, "instance_count"),
        ("PUT", "/online-endpoints/churn/deployments/blue",
         {**dep, "request_settings": {"request_timeout_ms": True}}, "request_settings.request_timeout_ms"),
        ("PUT", "/online-endpoints/churn/deployments/blue",
         {**dep, "batching": {"max_batch_wait_ms": False}}, "batching.max_batch_wait_ms"),
        ("PUT", "/batch-endpoints/oj-sales/deployments/forest",
         {"name": "forest", "endpoint_name": "oj-sales", "model": "models:/oj-sales/1", "mini_batch_size": True},
         "mini_batch_size"),
    ]
    with _admin(ws) as api:
        assert api.put("/online-endpoints/churn", json={"name": "churn"}).status_code == 200
        for method, path, body, field in cases:
            r = api.request(method, path, json=body)
            assert r.status_code == 400, (path, body, r.text)
            err = r.json()
            assert err["error_code"] == "InvalidSpec" and field in err["details"]["fields"], err
            assert f"{field}: must be " in err["message"] and "not the boolean" in err["message"], err
        # A per-job override is validated like the deployment spec.
        r = api.post("/batch-endpoints/oj-sales/jobs", json={"input": str(EXAMPLES), "overrides": {"mini_batch_size": True}})
        assert r.status_code == 400 and "mini_batch_size: must be a whole number, not the boolean true" in r.text
        # Nothing above changed anything.
        assert api.get("/online-endpoints/churn").json()["traffic"] == {}
        assert api.get("/online-endpoints/churn/deployments").json() == []
        assert api.get("/batch-endpoints/oj-sales/deployments/forest").json()["mini_batch_size"] == 10


def test_spec_counts_are_whole_numbers_not_booleans_or_strings(tmp_path):
    base = {"name": "blue", "endpoint_name": "churn", "model": "models:/churn/1"}
    for bad in (True, "2", 2.5):
        with pytest.raises(InvalidSpec, match="instance_count"):
            parse_spec(OnlineDeployment, {**base, "instance_count": bad})
    assert parse_spec(OnlineDeployment, {**base, "instance_count": 2.0}).instance_count == 2  # JSON's 2.0 is 2
    f = tmp_path / "ep.yml"
    f.write_text("name: churn\ntraffic:\n  blue: yes\n")  # YAML 1.1: `yes` is a boolean
    with pytest.raises(InvalidSpec, match=r"ep.yml: traffic.blue: must be a whole number, not the boolean true"):
        load_spec(OnlineEndpoint, f)
    dep = tmp_path / "dep.yml"
    dep.write_text("name: blue\nendpoint_name: churn\nmodel: models:/churn/1\n")
    with pytest.raises(InvalidSpec, match="instance_count: must be a whole number, not the boolean true"):
        load_spec(OnlineDeployment, dep, ["instance_count=true"])
    assert load_spec(OnlineDeployment, dep, ["instance_count=3"]).instance_count == 3


# --- spec files that are not YAML text --------------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    binary = tmp_path / "model.pkl"
    binary.write_bytes(b"\x80\x04\x95\x00\x00\x00\x00name: churn\x00\xff\xfe")
    latin = tmp_path / "latin1.yml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    folder = tmp_path / "a-folder.yml"
    folder.mkdir()
    inside_a_file = tmp_path / "plain.txt"
    inside_a_file.write_text("x")
    return {
        "binary": (binary, "is a binary file, not a YAML spec"),
        "not utf-8": (latin, "is not UTF-8 text"),
        "folder": (folder, "is a folder"),
        "unreadable path": (inside_a_file / "endpoint.yml", "cannot read"),
        "missing": (tmp_path / "missing.yml", "file not found"),
    }


def test_read_spec_file_names_the_file_and_the_problem(tmp_path):
    for kind, (path, words) in _bad_files(tmp_path).items():
        with pytest.raises(InvalidSpec) as info:
            read_spec_file(path)
        assert info.value.message.startswith(f"{path}: ") and words in info.value.message, (kind, info.value.message)
    deep = tmp_path / "deep.yml"
    deep.write_text("a: " + "[" * 100_000)
    with pytest.raises(InvalidSpec, match="deep.yml: not valid YAML"):
        read_spec_file(deep)
    bom = tmp_path / "bom.yml"
    bom.write_bytes(b"\xef\xbb\xbfname: churn\n")
    assert read_spec_file(bom) == {"name": "churn"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_spec_file_without_read_permission_is_named(tmp_path):
    f = tmp_path / "secret.yml"
    f.write_text("name: churn\n")
    f.chmod(0)
    with pytest.raises(InvalidSpec, match=r"secret.yml: cannot read \(Permission denied\)"):
        read_spec_file(f)


def test_cli_exits_2_with_a_message_for_binary_or_unreadable_spec_files(home, tmp_path):
    files = _bad_files(tmp_path)
    runs = [
        (("online-endpoint", "create", "-f"), "binary"),
        (("online-endpoint", "create", "-f"), "not utf-8"),
        (("online-deployment", "create", "-f"), "folder"),
        (("batch-endpoint", "create", "-f"), "unreadable path"),
        (("advise", "-f"), "binary"),
    ]
    for argv, kind in runs:
        path, words = files[kind]
        proc = run_cli(*argv, str(path), home=home)
        assert proc.returncode == 2, (argv, kind, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"error: {path}: ") and words in proc.stderr, proc.stderr


# --- the OpenAPI document ---------------------------------------------------------------------


def test_openapi_has_typed_bodies_and_the_statuses_really_returned(workspace):
    doc = httpx.get(f"{workspace.url}/api/v1/openapi.json", timeout=30).json()
    paths = doc["paths"]

    def body_ref(path: str, method: str) -> str:
        return paths[path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]

    assert body_ref("/api/v1/online-endpoints/{name}", "put").endswith("/OnlineEndpoint")
    assert body_ref("/api/v1/online-endpoints/{endpoint}/deployments/{name}", "put").endswith("/OnlineDeployment")
    assert body_ref("/api/v1/batch-endpoints/{name}", "put").endswith("/BatchEndpoint")
    assert body_ref("/api/v1/batch-endpoints/{endpoint}/deployments/{name}", "put").endswith("/BatchDeployment")
    assert body_ref("/api/v1/online-endpoints/{name}/traffic", "post").endswith("/TrafficUpdate")
    assert body_ref("/api/v1/batch-endpoints/{name}/jobs", "post").endswith("/JobRequest")
    schemas = doc["components"]["schemas"]
    traffic = schemas["OnlineEndpoint"]["properties"]["traffic"]
    assert traffic["additionalProperties"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert schemas["ErrorBody"]["required"] == ["error_code", "message"]
    assert "HTTPValidationError" not in schemas
    assert doc["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    for path, ops in paths.items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)  # validation errors are 400s here
            if path != "/api/v1/health":
                assert "401" in op["responses"], (method, path)
                assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert statuses("/api/v1/online-endpoints/{endpoint}/deployments/{name}", "put") >= {"200", "400", "401", "404", "409"}
    assert statuses("/api/v1/online-endpoints/{endpoint}/deployments/{name}", "delete") >= {"404", "409"}
    assert statuses("/api/v1/online-endpoints/{name}/traffic", "post") >= {"400", "404"}
    assert "400" not in statuses("/api/v1/online-endpoints/{name}", "get")  # a plain path parameter cannot be invalid

    # ... and the server answers as documented.
    with _admin(workspace) as api:
        assert api.put("/online-endpoints/churn", json=[1]).status_code == 400
        r = api.put("/online-endpoints/churn", content=b'{"name": ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["message"].startswith("the request body is not valid JSON")
        r = api.put("/online-endpoints/churn", json={"name": "other"})
        assert r.status_code == 400 and "does not match the name in the URL" in r.json()["message"]
        r = api.request("PATCH", "/online-endpoints/churn", json={})
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PUT", r.headers

        # Bodies are bounded before FastAPI buffers them (and before the token is checked).
        assert "413" in statuses("/api/v1/online-endpoints/{name}", "put")
        huge = b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}'
        r = httpx.put(f"{workspace.url}/api/v1/online-endpoints/churn", content=huge, timeout=60)
        assert r.status_code == 413 and r.json()["error_code"] == "PayloadTooLarge", r.text[:300]

        def streamed():  # no Content-Length: counted as it arrives
            yield b'{"name": "'
            for _ in range(5):
                yield b"x" * (1024 * 1024)
            yield b'"}'

        r = api.put("/online-endpoints/churn", content=streamed(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "larger than 4 MiB" in r.json()["message"], r.text[:300]


# --- the host log under a flood of bad requests -------------------------------------------------


def test_rate_limit_filter_lets_a_burst_through_then_a_trickle_and_counts_the_rest():
    now = [0.0]
    limiter = RateLimitFilter(burst=3, per_second=1.0, clock=lambda: now[0])
    log = logging.getLogger("test.ratelimit")

    def record(msg: str) -> logging.LogRecord:
        return log.makeRecord(log.name, logging.INFO, __file__, 1, msg, (), None)

    passed = [limiter.filter(record("401 GET /x")) for _ in range(10)]
    assert passed == [True] * 3 + [False] * 7
    assert limiter.filter(record("404 GET /y"))  # another kind of line has its own budget
    now[0] = 1.0
    later = record("401 GET /x")
    assert limiter.filter(later) and later.getMessage() == "401 GET /x [7 similar lines suppressed]"
    assert not limiter.filter(record("401 GET /x"))

    def pct() -> logging.LogRecord:  # a '%' in the message must survive the added count
        return log.makeRecord(log.name, logging.INFO, __file__, 1, "100%% of %s", ("it",), None)

    assert limiter.filter(pct()) and limiter.filter(pct()) and limiter.filter(pct())
    assert not limiter.filter(pct())
    now[0] = 10.0
    last = pct()
    assert limiter.filter(last) and last.getMessage() == "100% of it [1 similar lines suppressed]"


def test_host_log_rotates_and_stdout_follows_the_new_file(tmp_path):
    # A subprocess: the host's stdout/stderr are its log file, which pytest's capture must not see.
    log = tmp_path / "host.log"
    script = f"""
import logging, os, sys
from pathlib import Path
from toolkit.host.logs import setup_host_logging
fd = os.open({str(log)!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.dup2(fd, 1); os.dup2(fd, 2)
setup_host_logging(Path({str(log)!r}), foreground=False, max_bytes=20_000, backups=2)
for i in range(2000):
    logging.getLogger("toolkit.test").info("line %d %s", i, "x" * 60)
print("printed after the rollovers", flush=True)
logging.getLogger("toolkit.test").info("last line")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["host.log", "host.log.1", "host.log.2"], files
    for name in files:
        assert (tmp_path / name).stat().st_size <= 20_000 + 200, name
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name  # owner-only
    current = log.read_text()
    assert "printed after the rollovers" in current and "last line" in current


def test_a_flood_of_bad_requests_leaves_a_few_log_lines(workspace):
    url, host_log = workspace.url, workspace.home.host_log
    sent, started = 400, time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as anonymous:
        for i in range(sent):
            assert anonymous.get(f"/api/v1/online-endpoints/probe-{i}").status_code == 401
    elapsed = time.monotonic() - started

    def request_lines() -> list[str]:
        return [ln for ln in host_log.read_text(errors="replace").splitlines() if "toolkit.host.requests" in ln]

    lines = request_lines()
    assert any("WARNING toolkit.host.requests: 401 GET /api/v1/online-endpoints/probe-0 from 127.0.0.1" in ln
               for ln in lines), lines[:5]
    # A burst of 20, then one line every 2 s: a bound from the measured duration, not a timing.
    assert len(lines) <= 20 + elapsed * 0.5 + 2, (len(lines), elapsed)
    assert workspace.home.admin_token() not in host_log.read_text(errors="replace")
    # Once the budget refills, the next line says how many were left out.
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=30) as anonymous:
        while not any("similar lines suppressed" in ln for ln in request_lines()):
            assert time.monotonic() < deadline, request_lines()[-3:]
            anonymous.get("/api/v1/status")
            time.sleep(0.2)
