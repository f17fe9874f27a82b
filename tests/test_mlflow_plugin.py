"""The MLflow deployments plugin drives the same host as the SDK, through MLflow's API and its real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow.deployments
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from toolkit.demo.data import CHURN_FEATURES, churn_frame
from toolkit.home import Home
from toolkit.mlflow_plugin import home_of_target, target_help


def mlflow_cli(*args: str, home: Home, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mlflow deployments ...`` as a user runs it (the plugin found by its entry point)."""
    env = {**os.environ, "ENDPOINTS_HOME": str(home.root)}
    return subprocess.run([sys.executable, "-m", "mlflow", "deployments", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def refused(proc: subprocess.CompletedProcess[str], says: str) -> None:
    """A clear one-line error, exit 1, no traceback."""
    assert proc.returncode == 1, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Error: " in proc.stderr and says in proc.stderr, proc.stderr


def rows_where_versions_differ() -> pd.DataFrame:
    """Customers that churn v1 and v2 score differently, so a prediction tells which version served it."""
    frame = churn_frame(300, seed=11)[CHURN_FEATURES]
    v1 = mlflow.pyfunc.load_model("models:/churn/1").predict(frame)
    v2 = mlflow.pyfunc.load_model("models:/churn/2").predict(frame)
    differ = frame[pd.Series(list(v1)) != pd.Series(list(v2))]
    assert len(differ) >= 1, "churn v1 and v2 agree on every sampled row; choose another seed"
    return differ.head(5).reset_index(drop=True)


def test_deploy_client_create_predict_delete(workspace):
    client = mlflow.deployments.get_deploy_client("endpoints")
    dep = client.create_deployment("plugin", "models:/churn/1", config={"instance_count": "1"})
    assert dep["provisioning_state"] == "Succeeded" and dep["model_version"] == "churn:1"
    assert dep["flavor"] == "python_function" and dep["endpoint"] == "plugin"
    assert [d["name"] for d in client.list_deployments()] == ["plugin"]
    assert workspace.online_endpoints.get("plugin").traffic == {"plugin": 100}

    frame = churn_frame(4, seed=2)[CHURN_FEATURES]
    preds = client.predict(deployment_name="plugin", inputs=frame)
    expected = mlflow.pyfunc.load_model("models:/churn/1").predict(frame)
    assert list(preds["predictions"]) == list(expected)

    with pytest.raises(MlflowException, match="already exists in endpoint 'plugin'") as err:
        client.create_deployment("plugin", "models:/churn/2")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException, match="no online endpoint has a deployment named 'ghost'") as err:
        client.get_deployment("ghost")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="instance_type") as err:
        client.update_deployment("plugin", config={"instance_type": "gpu-huge"})
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="python_function"):
        client.create_deployment("other", "models:/churn/1", flavor="sklearn")
    with pytest.raises(MlflowException, match="-C home= is for run-local"):
        client.create_deployment("other", "models:/churn/1", config={"home": "/somewhere/else"})

    client.delete_deployment("plugin")
    client.delete_deployment("plugin")  # deletion is idempotent
    assert list(workspace.online_endpoints.list()) == []  # the endpoint made for it went with it


def test_a_create_that_fails_to_start_leaves_nothing_behind(workspace, tmp_path: Path):
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    raise RuntimeError('cannot load the vocabulary')\n\n"
                                   "def run(data):\n    return data\n")
    client = mlflow.deployments.get_deploy_client("endpoints")
    with pytest.raises(MlflowException, match="cannot load the vocabulary") as err:
        client.create_deployment("broken", "models:/churn/1", config={
            "code_configuration.code": str(code), "code_configuration.scoring_script": "score.py"})
    assert err.value.error_code == "INVALID_STATE"
    assert list(workspace.online_endpoints.list()) == []


def test_a_deployment_name_shared_by_two_endpoints_must_be_told_apart(workspace):
    client = mlflow.deployments.get_deploy_client("endpoints")
    for ep in ("east", "west"):
        client.create_deployment("blue", "models:/churn/1", endpoint=ep)
    with pytest.raises(MlflowException, match="exists in endpoints east, west; say which with --endpoint"):
        client.get_deployment("blue")
    assert client.get_deployment("blue", endpoint="west")["endpoint"] == "west"
    client.delete_deployment("blue", config={"endpoint": "east"})
    assert client.get_deployment("blue")["endpoint"] == "west"  # unique again


def test_delete_refuses_a_deployment_holding_part_of_the_traffic(workspace):
    client = mlflow.deployments.get_deploy_client("endpoints")
    client.create_deployment("blue", "models:/churn/1", endpoint="churn")
    client.create_deployment("green", "models:/churn/2", endpoint="churn")
    client.update_endpoint("churn", config={"traffic": "{blue: 50, green: 50}"})
    with pytest.raises(MlflowException, match="takes 50% of endpoint 'churn'.s traffic; move it first") as err:
        client.delete_deployment("green")
    assert err.value.error_code == "INVALID_STATE"
    client.update_endpoint("churn", config={"traffic": "{blue: 100, green: 0}"})
    client.delete_deployment("green")
    assert [d["name"] for d in client.list_deployments("churn")] == ["blue"]
    client.delete_endpoint("churn")
    client.delete_endpoint("churn")  # idempotent
    assert client.list_endpoints() == []


def test_target_uri_keeps_the_absolute_home_and_refuses_what_is_not_a_home(home: Home, tmp_path: Path) -> None:
    assert home_of_target(f"endpoints:{home.root}").root == home.root
    assert home_of_target(f"endpoints://{home.root}").root == home.root  # endpoints:///abs/path
    assert home_of_target("endpoints") is None
    for target, says in [
        (f"endpoints:{tmp_path / 'nowhere'}", "is not a workspace home"),
        ("endpoints:relative/home", "must be an absolute path"),
        ("endpoints://server/home", "a home is a local folder"),
    ]:
        with pytest.raises(MlflowException, match=says):
            home_of_target(target)
    assert not (tmp_path / "nowhere").exists()
    assert "endpoints:/abs/path/home" in target_help()


def test_the_real_mlflow_cli_drives_the_host(workspace, tmp_path: Path) -> None:
    home = workspace.home
    elsewhere = tmp_path / "elsewhere"  # the CLI runs from an unrelated folder
    elsewhere.mkdir()
    target = f"endpoints:{home.root}"
    cli = lambda *args: mlflow_cli(*args, home=home, cwd=elsewhere)  # noqa: E731

    assert "endpoints:/abs/path/home" in ok(cli("help", "-t", "endpoints"))

    # create: blue serves v1 with all the traffic, green (a name unlike its endpoint's) v1 with none
    assert "python_function deployment blue is created" in ok(
        cli("create", "-t", target, "--name", "blue", "-m", "models:/churn/1", "--endpoint", "churn"))
    ok(cli("create", "-t", target, "--name", "green", "-m", "models:/churn/1", "-C", "endpoint=churn",
           "-C", "instance_count=1"))
    assert workspace.online_endpoints.get("churn").traffic.get("green", 0) == 0

    listed = ok(cli("list", "-t", target))
    assert "'name': 'blue'" in listed and "'name': 'green'" in listed
    got = ok(cli("get", "-t", target, "--name", "green"))
    assert "endpoint: churn" in got and "model_version: churn:1" in got

    assert "Deployment green is updated (with flavor python_function)" in ok(
        cli("update", "-t", target, "--name", "green", "-m", "models:/churn/2"))
    assert workspace.online_deployments.get("churn", "green").model_version == "churn:2"

    # predict --name green scores on green (v2) although blue holds all the traffic
    frame = rows_where_versions_differ()
    request = tmp_path / "request.json"
    request.write_text(frame.to_json(orient="records"))
    sent = pd.read_json(request)  # what MLflow's CLI reads and sends
    out = tmp_path / "predictions.json"
    ok(cli("predict", "-t", target, "--name", "green", "-I", str(request), "-O", str(out)))
    expected_v2 = mlflow.pyfunc.load_model("models:/churn/2").predict(sent)
    assert json.loads(out.read_text())["predictions"] == [int(v) for v in expected_v2]
    by_traffic = json.loads(ok(cli("predict", "-t", target, "--endpoint", "churn", "-I", str(request))))
    expected_v1 = mlflow.pyfunc.load_model("models:/churn/1").predict(sent)
    assert by_traffic["predictions"] == [int(v) for v in expected_v1]

    # errors are one line, no traceback
    refused(cli("get", "-t", target, "--name", "ghost"), "no online endpoint has a deployment named 'ghost'")

    ok(cli("delete", "-t", target, "--name", "green"))
    ok(cli("delete", "-t", target, "--name", "green"))  # idempotent
    ok(cli("delete", "-t", target, "--name", "blue"))
    assert list(workspace.online_endpoints.list()) == []

    # run-local: MLflow passes no target, the home comes from -C home= (or $ENDPOINTS_HOME)
    shown = ok(cli("run-local", "-t", target, "--name", "trial", "-m", "models:/churn/1", "-C", f"home={home.root}"))
    assert f"{workspace.url}/endpoints/trial/score" in shown
    assert workspace.online_deployments.get("trial", "trial").provisioning_state == "Succeeded"
    assert list(workspace.online_endpoints.invoke("trial", frame)) == [int(v) for v in expected_v1]
    ok(cli("run-local", "-t", target, "--name", "trial", "-m", "models:/churn/2"))  # again: updated in place
    assert workspace.online_deployments.get("trial", "trial").model_version == "churn:2"
    ok(cli("delete", "-t", target, "--name", "trial"))

    # a failing create leaves nothing behind, in a new endpoint or in an existing one
    refused(cli("create", "-t", target, "--name", "bad", "-m", "models:/churn/99"), "churn")
    workspace.online_endpoints.create_or_update({"name": "kept"})
    refused(cli("create", "-t", target, "--name", "bad", "-m", "models:/churn/1", "--endpoint", "kept",
                "-C", "instance_type=gpu-huge"), "instance_type")
    assert [e.name for e in workspace.online_endpoints.list()] == ["kept"]
    assert list(workspace.online_deployments.list("kept")) == []

    assert list(elsewhere.iterdir()) == []  # no second workspace under the current folder
