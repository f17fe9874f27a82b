"""MLflow deployments plugin (target ``endpoints``).

``mlflow deployments create -t endpoints --name blue -m models:/churn/1 -C endpoint=churn`` and
``mlflow.deployments.get_deploy_client("endpoints")`` drive the workspace's host through the SDK.
A deployment lives under an online endpoint: pass ``endpoint=`` (or ``-C endpoint=...``); when it
is missing the endpoint takes the deployment's name, and is created on first use.
"""

from __future__ import annotations

from typing import Any

from mlflow.deployments import BaseDeploymentClient

from .errors import NotFound
from .specs import OnlineDeployment, OnlineEndpoint

__all__ = ["EndpointsDeploymentClient", "run_local", "target_help"]

_DEPLOYMENT_FIELDS = set(OnlineDeployment.model_fields) - {"name", "endpoint_name", "model"}


def _coerce(value: Any) -> Any:
    """`-C key=value` arrives as strings; turn numbers and booleans into what the spec expects."""
    if isinstance(value, str):
        import yaml

        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


class EndpointsDeploymentClient(BaseDeploymentClient):
    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)
        from .workspace import Workspace

        # "endpoints" or "endpoints:/path/to/home"
        _, _, home = target_uri.partition(":/")
        self.ws = Workspace(home or None)

    def _endpoint(self, name: str, endpoint: str | None, config: dict[str, Any] | None) -> str:
        ep = endpoint or (config or {}).get("endpoint") or name
        try:
            self.ws.online_endpoints.get(ep)
        except NotFound:
            self.ws.online_endpoints.create_or_update(OnlineEndpoint(name=ep))
        return ep

    def _spec(self, name: str, ep: str, model_uri: str, config: dict[str, Any] | None) -> OnlineDeployment:
        extra = {k: _coerce(v) for k, v in (config or {}).items() if k in _DEPLOYMENT_FIELDS}
        return OnlineDeployment(name=name, endpoint_name=ep, model=model_uri, **extra)

    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):  # type: ignore[override]
        ep = self._endpoint(name, endpoint, config)
        traffic = self.ws.online_endpoints.get(ep).traffic
        dep = self.ws.online_deployments.create_or_update(self._spec(name, ep, model_uri, config),
                                                          all_traffic=not any(traffic.values()))
        return {"name": name, "endpoint": ep, "flavor": flavor or "python_function", **dep.to_dict()}

    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):  # type: ignore[override]
        ep = endpoint or (config or {}).get("endpoint") or name
        current = self.ws.online_deployments.get(ep, name).to_dict()
        fields = {k: v for k, v in current.items() if k in OnlineDeployment.model_fields}
        if model_uri:
            fields["model"] = model_uri
        fields.update({k: _coerce(v) for k, v in (config or {}).items() if k in _DEPLOYMENT_FIELDS})
        dep = self.ws.online_deployments.create_or_update(OnlineDeployment(**fields))
        return {"name": name, "endpoint": ep, **dep.to_dict()}

    def delete_deployment(self, name, config=None, endpoint=None):  # type: ignore[override]
        ep = endpoint or (config or {}).get("endpoint") or name
        traffic = self.ws.online_endpoints.get(ep).traffic
        if traffic.get(name) == 100:
            self.ws.online_endpoints.update_traffic(ep, {})
        self.ws.online_deployments.delete(ep, name)
        if ep == name and not list(self.ws.online_deployments.list(ep)):
            self.ws.online_endpoints.delete(ep)

    def list_deployments(self, endpoint=None):  # type: ignore[override]
        eps = [endpoint] if endpoint else [e.name for e in self.ws.online_endpoints.list()]
        return [d.to_dict() for ep in eps for d in self.ws.online_deployments.list(ep)]

    def get_deployment(self, name, endpoint=None):  # type: ignore[override]
        return self.ws.online_deployments.get(endpoint or name, name).to_dict()

    def predict(self, deployment_name=None, inputs=None, endpoint=None):  # type: ignore[override]
        from mlflow.deployments import PredictionsResponse

        ep = endpoint or deployment_name
        if ep is None:
            raise NotFound("predict needs an endpoint or a deployment name")
        out = self.ws.online_endpoints.invoke(ep, inputs, deployment_name=deployment_name if endpoint else None)
        return PredictionsResponse({"predictions": out})

    def create_endpoint(self, name, config=None):  # type: ignore[override]
        spec = OnlineEndpoint(name=name, **{k: _coerce(v) for k, v in (config or {}).items()
                                            if k in OnlineEndpoint.model_fields and k != "name"})
        return self.ws.online_endpoints.create_or_update(spec).to_dict()

    def update_endpoint(self, endpoint, config=None):  # type: ignore[override]
        traffic = (config or {}).get("traffic")
        if isinstance(traffic, str):
            traffic = _coerce(traffic)
        return self.ws.online_endpoints.update_traffic(endpoint, traffic).to_dict()

    def delete_endpoint(self, endpoint):  # type: ignore[override]
        self.ws.online_endpoints.delete(endpoint)

    def list_endpoints(self):  # type: ignore[override]
        return [e.to_dict() for e in self.ws.online_endpoints.list()]

    def get_endpoint(self, endpoint):  # type: ignore[override]
        return self.ws.online_endpoints.get(endpoint).to_dict()


def run_local(target: str, name: str, model_uri: str, flavor: str | None = None, config: dict[str, Any] | None = None) -> None:
    """Serve the model in the foreground on the local host (``mlflow deployments run-local``)."""
    client = EndpointsDeploymentClient(target)
    client.create_deployment(name, model_uri, flavor, config)
    print(f"serving {model_uri} at {client.ws.url}/endpoints/{(config or {}).get('endpoint', name)}/score")


def target_help() -> str:
    return (
        "Target 'endpoints' deploys to the Endpoints Toolkit host of $ENDPOINTS_HOME (or ./mlruns); "
        "'endpoints:/path/to/home' picks another home. Config keys (-C): endpoint=<online endpoint>, "
        "instance_type, instance_count, and any other OnlineDeployment field."
    )
