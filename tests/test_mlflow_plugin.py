"""The MLflow deployments plugin drives the same host as the SDK."""

from __future__ import annotations

import mlflow.deployments

from toolkit.demo.data import CHURN_FEATURES, churn_frame


def test_deploy_client_create_predict_delete(workspace):
    client = mlflow.deployments.get_deploy_client("endpoints")
    dep = client.create_deployment("plugin", "models:/churn/1", config={"instance_count": "1"})
    assert dep["provisioning_state"] == "Succeeded" and dep["model_version"] == "churn:1"
    assert [d["name"] for d in client.list_deployments()] == ["plugin"]
    assert workspace.online_endpoints.get("plugin").traffic == {"plugin": 100}

    frame = churn_frame(4, seed=2)[CHURN_FEATURES]
    preds = client.predict(deployment_name="plugin", inputs=frame)
    expected = mlflow.pyfunc.load_model("models:/churn/1").predict(frame)
    assert list(preds["predictions"]) == list(expected)

    client.delete_deployment("plugin")
    assert list(workspace.online_endpoints.list()) == []
    assert "endpoints" in __import__("toolkit.mlflow_plugin", fromlist=["x"]).target_help()
