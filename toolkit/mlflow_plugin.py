"""MLflow deployments plugin: target ``endpoints`` (``mlflow deployments ... -t endpoints``).

``mlflow deployments create -t endpoints --name blue -m models:/churn/1 --endpoint churn`` and
``mlflow.deployments.get_deploy_client("endpoints")`` drive a workspace's host through the SDK.

How MLflow's flat deployment names map onto endpoints: a deployment lives under an online
endpoint, and names are unique per endpoint only.  Every call takes the endpoint from
``--endpoint`` (``endpoint=``), else from ``-C endpoint=...``; without either,

- ``create`` uses an endpoint named after the deployment, creating it if needed (tagged so
  that deleting its last deployment removes it again);
- every other call finds the one endpoint holding a deployment of that name, and refuses, naming
  the endpoints, when several do.

So ``predict --name green`` scores on ``green`` (pinned, whatever the traffic split) wherever it
lives, and ``predict --endpoint churn`` follows the endpoint's traffic.

Errors are :class:`EndpointsDeploymentError`: an ``MlflowException`` (the plugin contract) that
MLflow's click CLI also prints as a one-line ``Error: ...`` instead of a traceback.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import click
from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR, INVALID_PARAMETER_VALUE, INVALID_STATE, PERMISSION_DENIED, RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE,
)

from .errors import (
    Conflict, DeploymentFailed, HostNotRunning, InvalidInput, InvalidSpec, NotFound, ToolkitError, Unauthorized,
    Unavailable,
)
from .home import Home
from .specs import OnlineDeployment, OnlineEndpoint, apply_overrides, parse_spec

__all__ = ["EndpointsDeploymentClient", "EndpointsDeploymentError", "home_of_target", "run_local", "target_help"]

TARGET = "endpoints"
FLAVOR = "python_function"
# Marks an endpoint the plugin made for a deployment; deleting its last deployment deletes it.
CREATED_TAG = ("created-by", "mlflow-deployments")
# -C keys of the plugin itself; every other key is a field of the deployment (or endpoint) spec.
_PLUGIN_KEYS = ("endpoint", "home")

F = TypeVar("F", bound=Callable[..., Any])


class EndpointsDeploymentError(ToolkitError, MlflowException, click.ClickException):
    """An ``MlflowException`` that click's CLI shows as ``Error: <message>`` (exit 1).

    It is also a :class:`~toolkit.errors.ToolkitError` (one error tree): ``except ToolkitError``
    catches the plugin's errors as it catches the SDK's. ``error_code`` is MLflow's name for the code.
    """

    status_code = 500

    def __init__(self, message: str, error_code: int = INTERNAL_ERROR) -> None:
        # MLflow's constructor fills its fields (error_code, sqlstate) and hands on to click's.
        MlflowException.__init__(self, message, error_code=error_code)
        self.details = {}


_CODES: list[tuple[type[ToolkitError], int]] = [
    (NotFound, RESOURCE_DOES_NOT_EXIST), (Conflict, RESOURCE_ALREADY_EXISTS), (InvalidSpec, INVALID_PARAMETER_VALUE),
    (InvalidInput, INVALID_PARAMETER_VALUE), (Unauthorized, PERMISSION_DENIED), (DeploymentFailed, INVALID_STATE),
    (HostNotRunning, TEMPORARILY_UNAVAILABLE), (Unavailable, TEMPORARILY_UNAVAILABLE),
]


def _error(message: str, code: int = INVALID_PARAMETER_VALUE) -> EndpointsDeploymentError:
    return EndpointsDeploymentError(message, code)


def _mlflow_errors(fn: F) -> F:
    """Raise the toolkit's errors (and a host that cannot be reached) as EndpointsDeploymentError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MlflowException:
            raise
        except ToolkitError as err:
            code = next((c for cls, c in _CODES if isinstance(err, cls)), INTERNAL_ERROR)
            raise EndpointsDeploymentError(err.message, code) from None
        except OSError as err:
            raise EndpointsDeploymentError(f"the endpoints host could not be reached: {err}", TEMPORARILY_UNAVAILABLE) from None

    return wrapper  # type: ignore[return-value]


def home_of_target(target_uri: str) -> Home | None:
    """The workspace home a target names: ``endpoints`` (None: the default home) or ``endpoints:/abs/path``.

    An explicit home must already be a workspace: a typo must not start a second host in a new,
    empty workspace.
    """
    parsed = urlparse(target_uri)
    if parsed.scheme != TARGET and not (not parsed.scheme and parsed.path == TARGET):
        raise _error(f"target {target_uri!r}: expected '{TARGET}' or '{TARGET}:/absolute/path/to/home'")
    if not parsed.scheme:
        return None
    if parsed.netloc:
        raise _error(f"target {target_uri!r}: a home is a local folder; write it as '{TARGET}:/absolute/path'")
    path = Path(parsed.path).expanduser()
    if not path.is_absolute():
        raise _error(f"target {target_uri!r}: the home must be an absolute path ('{TARGET}:/path/to/home' or "
                     f"'{TARGET}:~/path')")
    home = Home(path.resolve())
    if not (home.mlflow_db.exists() or home.endpoints.is_dir()):
        raise _error(
            f"target {target_uri!r}: {home.root} is not a workspace home (no mlflow.db or endpoints/ in it); "
            f"start one there with `endpoints up --home {home.root}`, or fix the path", RESOURCE_DOES_NOT_EXIST)
    return home


def _split_config(config: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plugin keys, spec fields) of a ``-C`` config."""
    config = dict(config or {})
    return {k: config.pop(k) for k in _PLUGIN_KEYS if k in config}, config


def _with_settings(base: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``-C`` settings: strings parsed as YAML (``instance_count=2``, ``tags={a: b}``),
    dotted keys reaching nested fields (``request_settings.request_timeout_ms=500``)."""
    data = dict(base)
    apply_overrides(data, [f"{k}={v}" for k, v in settings.items() if isinstance(v, str)])
    data.update({k: v for k, v in settings.items() if not isinstance(v, str)})
    return data


def _check_flavor(flavor: str | None, model_uri: str | None = None, *, update: bool = False) -> None:
    if flavor not in (None, FLAVOR):
        raise _error(f"flavor {flavor!r}: the endpoints target serves MLflow's {FLAVOR!r} flavor only; "
                     f"leave --flavor out or pass {FLAVOR}")
    if update and flavor and not model_uri:
        raise _error("--flavor needs --model-uri: a flavor is chosen together with the model it serves")


class EndpointsDeploymentClient(BaseDeploymentClient):
    """Deployments of the online endpoints of one workspace host (see the module docstring)."""

    @_mlflow_errors
    def __init__(self, target_uri: str = TARGET) -> None:
        super().__init__(target_uri)
        from .workspace import Workspace

        self.ws = Workspace(home_of_target(target_uri))

    def _settings(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """The spec fields of a ``-C`` config; ``home=`` must name this client's home (run-local's key)."""
        plugin, settings = _split_config(config)
        home = plugin.get("home")
        if home and Path(str(home)).expanduser().resolve() != self.ws.home.root:
            raise _error(f"config home={home!r}: choose the workspace with the target "
                         f"(-t {TARGET}:/abs/path/home); -C home= is for run-local, which gets no target")
        return settings

    # --- name resolution ------------------------------------------------------------------
    def _holders(self, name: str) -> list[str]:
        return [e.name for e in self.ws.online_endpoints.list()
                if any(d.name == name for d in self.ws.online_deployments.list(e.name))]

    def _find(self, name: str, endpoint: str | None, config: dict[str, Any] | None) -> str | None:
        """The endpoint of deployment ``name``: the one given, else the only one holding it (None: none)."""
        given = endpoint or _split_config(config)[0].get("endpoint")
        if given:
            return str(given)
        holders = self._holders(name)
        if len(holders) > 1:
            raise _error(f"deployment {name!r} exists in endpoints {', '.join(holders)}; "
                         f"say which with --endpoint (or -C endpoint=...)")
        return holders[0] if holders else None

    def _endpoint_of(self, name: str, endpoint: str | None, config: dict[str, Any] | None) -> str:
        ep = self._find(name, endpoint, config)
        if ep is None:
            raise _error(f"no online endpoint has a deployment named {name!r} "
                         f"(`mlflow deployments list -t {self.target_uri}` shows them)", RESOURCE_DOES_NOT_EXIST)
        return ep

    def _describe(self, dep: Any) -> dict[str, Any]:
        d = dep.to_dict()
        ep = d["endpoint_name"]
        return {"name": d["name"], "endpoint": ep, "flavor": FLAVOR, **d,
                "scoring_uri": f"{self.ws.url}/endpoints/{ep}/score"}

    # --- deployments ------------------------------------------------------------------------
    @_mlflow_errors
    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):  # type: ignore[override]
        """Create deployment ``name`` serving ``model_uri``; it takes all traffic of an endpoint that has none.

        Refuses an existing deployment (use ``update``).  A failed create leaves nothing behind:
        neither the deployment nor the endpoint it created.
        """
        _check_flavor(flavor)
        settings = self._settings(config)
        ep = str(endpoint or _split_config(config)[0].get("endpoint") or name)
        spec = parse_spec(OnlineDeployment, _with_settings({"name": name, "endpoint_name": ep, "model": model_uri},
                                                           settings))
        try:
            traffic = self.ws.online_endpoints.get(ep).traffic
            created_endpoint = False
        except NotFound:
            self.ws.online_endpoints.create_or_update(OnlineEndpoint(name=ep, tags=dict([CREATED_TAG])))
            traffic, created_endpoint = {}, True
        else:
            if any(d.name == name for d in self.ws.online_deployments.list(ep)):
                raise _error(f"deployment {name!r} already exists in endpoint {ep!r}; change it with "
                             f"`mlflow deployments update` or pick another name", RESOURCE_ALREADY_EXISTS)
        try:
            dep = self.ws.online_deployments.create_or_update(spec, all_traffic=not any(traffic.values()))
        except BaseException:
            self._undo_create(ep, name, created_endpoint)
            raise
        return self._describe(dep)

    def _undo_create(self, ep: str, name: str, created_endpoint: bool) -> None:
        for undo in (lambda: self.ws.online_deployments.delete(ep, name),
                     *([lambda: self.ws.online_endpoints.delete(ep)] if created_endpoint else [])):
            try:
                undo()
            except ToolkitError:  # not created, or already gone: nothing to undo
                pass

    @_mlflow_errors
    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):  # type: ignore[override]
        """Change the model and/or settings of deployment ``name``; returns it (with ``flavor``)."""
        _check_flavor(flavor, model_uri, update=True)
        ep = self._endpoint_of(name, endpoint, config)
        current = self.ws.online_deployments.get(ep, name).to_dict()
        fields = {k: v for k, v in current.items() if k in OnlineDeployment.model_fields}
        if model_uri:
            fields["model"] = model_uri
        spec = parse_spec(OnlineDeployment, _with_settings(fields, self._settings(config)))
        return self._describe(self.ws.online_deployments.create_or_update(spec))

    @_mlflow_errors
    def delete_deployment(self, name, config=None, endpoint=None):  # type: ignore[override]
        """Delete deployment ``name`` (idempotent).  Its traffic must be all of the endpoint's or none."""
        ep = self._find(name, endpoint, config)
        if ep is None:
            return None
        try:
            current = self.ws.online_endpoints.get(ep)
        except NotFound:
            return None
        if not any(d.name == name for d in self.ws.online_deployments.list(ep)):
            return None
        traffic, mirror = dict(current.traffic), dict(current.get("mirror_traffic") or {})
        share = traffic.get(name, 0)
        if 0 < share < 100:
            rest = {k: v for k, v in traffic.items() if k != name and v}
            raise _error(f"deployment {name!r} takes {share}% of endpoint {ep!r}'s traffic; move it first, e.g. "
                         f"`mlflow deployments update-endpoint -t {self.target_uri} --endpoint {ep} "
                         f"-C traffic='{{{', '.join(f'{k}: {v}' for k, v in rest.items())}}}'` with the shares "
                         f"summing to 100", INVALID_STATE)
        if share or name in mirror:
            traffic.pop(name, None)
            mirror.pop(name, None)
            self.ws.online_endpoints.update_traffic(ep, traffic if any(traffic.values()) else {}, mirror)
        self.ws.online_deployments.delete(ep, name)
        tags = current.get("tags") or {}
        if tags.get(CREATED_TAG[0]) == CREATED_TAG[1] and not list(self.ws.online_deployments.list(ep)):
            self.ws.online_endpoints.delete(ep)
        return None

    @_mlflow_errors
    def list_deployments(self, endpoint=None):  # type: ignore[override]
        eps = [endpoint] if endpoint else [e.name for e in self.ws.online_endpoints.list()]
        return [self._describe(d) for ep in eps for d in self.ws.online_deployments.list(ep)]

    @_mlflow_errors
    def get_deployment(self, name, endpoint=None):  # type: ignore[override]
        return self._describe(self.ws.online_deployments.get(self._endpoint_of(name, endpoint, None), name))

    @_mlflow_errors
    def predict(self, deployment_name=None, inputs=None, endpoint=None):  # type: ignore[override]
        """Score ``inputs`` on deployment ``deployment_name`` (pinned), or on ``endpoint`` by its traffic."""
        if inputs is None:
            raise _error("predict needs inputs: a DataFrame, or a dict such as {'dataframe_split': ...}")
        if deployment_name:
            ep = self._endpoint_of(deployment_name, endpoint, None)
        elif endpoint:
            ep = endpoint
        else:
            raise _error("predict needs a deployment name (--name) or an endpoint (--endpoint)")
        out = self.ws.online_endpoints.invoke(ep, inputs, deployment_name=deployment_name or None)
        return PredictionsResponse({"predictions": out})

    # --- endpoints ----------------------------------------------------------------------------
    @_mlflow_errors
    def create_endpoint(self, name, config=None):  # type: ignore[override]
        """Create online endpoint ``name``; ``-C`` sets its fields (auth_mode, description, tags)."""
        if any(e.name == name for e in self.ws.online_endpoints.list()):
            raise _error(f"online endpoint {name!r} already exists", RESOURCE_ALREADY_EXISTS)
        spec = parse_spec(OnlineEndpoint, _with_settings({"name": name}, self._settings(config)))
        return self.ws.online_endpoints.create_or_update(spec).to_dict()

    @_mlflow_errors
    def update_endpoint(self, endpoint, config=None):  # type: ignore[override]
        """``-C traffic='{blue: 90, green: 10}'`` / ``mirror_traffic=...`` / other endpoint fields."""
        settings = self._settings(config)
        current = self.ws.online_endpoints.get(endpoint).to_dict()
        fields = {k: v for k, v in current.items() if k in OnlineEndpoint.model_fields}
        spec = parse_spec(OnlineEndpoint, _with_settings(fields, settings))
        if set(settings) - {"traffic", "mirror_traffic"}:
            self.ws.online_endpoints.create_or_update(spec)
        if {"traffic", "mirror_traffic"} & set(settings):
            self.ws.online_endpoints.update_traffic(endpoint, spec.traffic, spec.mirror_traffic)
        return self.ws.online_endpoints.get(endpoint).to_dict()

    @_mlflow_errors
    def delete_endpoint(self, endpoint):  # type: ignore[override]
        """Delete online endpoint ``endpoint`` and its deployments (idempotent)."""
        try:
            self.ws.online_endpoints.delete(endpoint)
        except NotFound:
            pass

    @_mlflow_errors
    def list_endpoints(self):  # type: ignore[override]
        return [e.to_dict() for e in self.ws.online_endpoints.list()]

    @_mlflow_errors
    def get_endpoint(self, endpoint):  # type: ignore[override]
        return self.ws.online_endpoints.get(endpoint).to_dict()


@_mlflow_errors
def run_local(name: str, model_uri: str, flavor: str | None = None, config: dict[str, Any] | None = None) -> None:
    """Deploy ``model_uri`` as deployment ``name`` on this machine's host, ready to score, and say where.

    MLflow calls ``run_local(name, model_uri, flavor, config)``: the ``-t`` target is *not*
    passed, so the home comes from ``-C home=/path`` (else ``$ENDPOINTS_HOME`` or ``./mlruns``).
    An existing deployment of that name is updated to the model, so running it again is fine.
    """
    plugin, _ = _split_config(config)
    target = f"{TARGET}:{Path(str(plugin['home'])).expanduser().resolve()}" if plugin.get("home") else TARGET
    client = EndpointsDeploymentClient(target)
    ep = client._find(name, None, config)
    exists = ep is not None and any(d.name == name for d in client.ws.online_deployments.list(ep))
    if exists:
        dep = client.update_deployment(name, model_uri, flavor, config, endpoint=ep)
    else:
        dep = client.create_deployment(name, model_uri, flavor, config)
    ep = dep["endpoint"]
    click.echo(
        f"deployment {name!r} of endpoint {ep!r} serves {model_uri} ({dep.get('model_version') or model_uri})\n"
        f"  score:  POST {dep['scoring_uri']}  (key: `endpoints online-endpoint get-credentials --name {ep}`)\n"
        f"  remove: mlflow deployments delete -t {target} --name {name}"
    )


def target_help() -> str:
    return f"""Target '{TARGET}': the online endpoints of an Endpoints Toolkit workspace on this machine.

Target URI
  {TARGET}                   the workspace of $ENDPOINTS_HOME (default ./mlruns); its host starts if needed
  {TARGET}:/abs/path/home    that workspace (it must exist: `endpoints up --home /abs/path/home`)

Deployments live under online endpoints, and a name is unique within its endpoint.
  --endpoint NAME (or -C endpoint=NAME) picks the endpoint.  Without it, `create` uses (and
  creates) an endpoint named after the deployment, and the other commands find the one endpoint
  holding that deployment name.  `predict --name D` scores on deployment D whatever the traffic
  split; `predict --endpoint E` follows E's traffic.
  A new deployment takes all traffic of an endpoint that has none; otherwise it gets none until
  `update-endpoint -C traffic='{{blue: 90, green: 10}}'`.
  `delete` removes the deployment (and the endpoint `create` made for it once it is empty); a
  deployment holding part of the traffic must be moved out of it first.

Config (-C key=value; values are YAML, dotted keys reach nested fields)
  create/update:   instance_type, instance_count, environment_variables, request_settings.*,
                   scale_settings.*, batching.*, liveness_probe.*, readiness_probe.*, description,
                   tags, code_configuration.* (any OnlineDeployment field)
  create-endpoint / update-endpoint: auth_mode (key|token|none), description, tags, traffic,
                   mirror_traffic
  run-local:       home=/abs/path/home (MLflow does not pass -t to run-local)

Flavor: {FLAVOR} only (the default).
run-local deploys on this machine's host like `create` (updating an existing deployment of that
name), waits until it serves, and prints the scoring URL.
"""
