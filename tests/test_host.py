"""The host as a user meets it: `endpoints up/status/down` in subprocesses, real HTTP, real files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from conftest import free_port, run_cli
from toolkit.errors import Conflict, InvalidSpec, NotFound
from toolkit.host import daemon

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_up_status_create_list_restart_down(home):
    port = free_port()
    up = run_cli("up", "--port", str(port), home=home)
    assert up.returncode == 0, up.stderr
    assert f"http://127.0.0.1:{port}" in up.stdout
    try:
        again = run_cli("up", "--port", str(free_port()), home=home)
        assert again.returncode == 1 and "already running" in again.stderr

        status = run_cli("status", home=home)
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout and "pid" in status.stdout
        status_json = json.loads(run_cli("status", "-o", "json", home=home).stdout)
        assert status_json["running"] and status_json["uptime_s"] >= 0

        created = run_cli("online-endpoint", "create", "-f", str(EXAMPLES / "churn-endpoint.yml"), home=home)
        assert created.returncode == 0, created.stderr
        listed = json.loads(run_cli("online-endpoint", "list", "-o", "json", home=home).stdout)
        assert [e["name"] for e in listed] == ["churn"]
        # create of an existing one is refused; update is the verb for that
        assert run_cli("online-endpoint", "create", "-f", str(EXAMPLES / "churn-endpoint.yml"), home=home).returncode == 1

        assert run_cli("down", home=home).returncode == 0
        assert daemon.read_host(home) is None
        assert run_cli("up", "--port", str(port), home=home).returncode == 0
        listed = json.loads(run_cli("online-endpoint", "list", "-o", "json", home=home).stdout)
        assert [e["name"] for e in listed] == ["churn"]
    finally:
        run_cli("down", home=home)
    assert daemon.read_host(home) is None


@pytest.mark.parametrize("yaml_text, words", [
    ("name: churn\ntraffic: {blue: 60, green: 30}\n", "traffic: must sum to 0 or 100, got 90"),
    ("name: churn_ep\n", "name: 'churn_ep' must start with a letter"),
    ("name: churn\ncolour: blue\n", "colour: unknown field"),
    ("name: churn\nmirror_traffic: {green: 60}\n", "mirror_traffic.green: must be at most 50"),
])
def test_bad_yaml_exits_2_names_the_field_and_writes_nothing(workspace, tmp_path, yaml_text, words):
    f = tmp_path / "bad.yml"
    f.write_text(yaml_text)
    proc = run_cli("online-endpoint", "create", "-f", str(f), home=workspace.home)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "bad.yml" in proc.stderr
    assert list(workspace.online_endpoints.list()) == []


def test_admin_token_required_and_never_logged(workspace):
    token = workspace.home.admin_token()
    mode = stat.S_IMODE(workspace.home.admin_token_file.stat().st_mode)
    assert mode == 0o600
    url = workspace.url
    assert httpx.get(f"{url}/api/v1/online-endpoints").status_code == 401
    bad = httpx.get(f"{url}/api/v1/online-endpoints", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error_code"] == "Unauthorized"
    assert token not in bad.text
    assert httpx.get(f"{url}/api/v1/health").status_code == 200
    doc = httpx.get(f"{url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    assert doc["openapi"].startswith("3.") and "/api/v1/online-endpoints/{name}" in doc["paths"]
    workspace.online_endpoints.create_or_update({"name": "churn"})
    for log in workspace.home.logs.rglob("*.log"):
        assert token not in log.read_text(errors="replace"), log


def test_sdk_errors_are_typed_and_carry_the_host_message(workspace):
    with pytest.raises(NotFound, match="online endpoint 'ghost' does not exist"):
        workspace.online_endpoints.get("ghost")
    workspace.online_endpoints.create_or_update({"name": "churn"})
    with pytest.raises(InvalidSpec, match="traffic.blue: endpoint 'churn' has no deployment named 'blue'"):
        workspace.online_endpoints.update_traffic("churn", {"blue": 100})
    with pytest.raises(NotFound, match="model: model 'churn' has no alias 'gold'"):
        workspace.online_deployments.create_or_update(
            {"name": "blue", "endpoint_name": "churn", "model": "models:/churn@gold"})
    with pytest.raises(NotFound):
        workspace.batch_deployments.create_or_update(
            {"name": "forest", "endpoint_name": "nowhere", "model": "models:/oj-sales/1"})
    assert "churn" in repr(workspace.online_endpoints.get("churn"))
    assert "<table>" in workspace.online_endpoints.get("churn")._repr_html_()


def test_batch_specs_crud_and_default(workspace):
    ws = workspace
    ws.batch_endpoints.create_or_update({"name": "oj-sales"})
    dep = ws.batch_deployments.create_or_update(
        {"name": "forest", "endpoint_name": "oj-sales", "model": "models:/oj-sales@production"})
    assert dep.model_version == "oj-sales:1"
    assert ws.batch_endpoints.get("oj-sales").defaults["deployment_name"] == "forest"
    ws.batch_deployments.create_or_update(
        {"name": "forest2", "endpoint_name": "oj-sales", "model": "models:/oj-sales/1"}, set_default=True)
    assert ws.batch_endpoints.get("oj-sales").defaults["deployment_name"] == "forest2"
    with pytest.raises(Conflict, match="default"):
        ws.batch_deployments.delete("oj-sales", "forest2")
    ws.batch_deployments.delete("oj-sales", "forest")
    assert [d.name for d in ws.batch_deployments.list("oj-sales")] == ["forest2"]
    ws.batch_endpoints.delete("oj-sales")
    assert list(ws.batch_endpoints.list()) == []


def test_models_list_cli_shows_versions_and_aliases(workspace):
    proc = run_cli("models", "list", "-o", "json", home=workspace.home)
    models = {m["name"]: m for m in json.loads(proc.stdout)}
    assert [v["version"] for v in models["churn"]["versions"]] == ["1", "2"]
    assert models["churn"]["versions"][1]["aliases"] == ["challenger"]
    assert models["churn"]["versions"][0]["signature"]["inputs"]
    human = run_cli("models", "show", "churn", home=workspace.home).stdout
    assert "champion" in human and "region:string" in human


def test_local_test_verb_scores_a_spec_without_creating_anything(home, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"dataframe_split": {"columns": ["age"], "data": [[1]]}}')
    ok = run_cli("online-deployment", "test", "-f", str(EXAMPLES / "churn-blue.yml"),
                 "--request-file", str(EXAMPLES / "churn-request.json"), home=home)
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["predictions"]) == 2
    failed = run_cli("online-deployment", "test", "-f", str(EXAMPLES / "churn-blue.yml"),
                     "--request-file", str(bad), home=home)
    assert failed.returncode == 1 and "tenure_months" in json.loads(failed.stdout)["message"]
    assert daemon.read_host(home) is None and not home.state_db.exists()
