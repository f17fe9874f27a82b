"""Operation groups of :class:`toolkit.Workspace`, named after azure-ai-ml's MLClient."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .entities import Entity, EntityList
from .errors import DeploymentFailed, InvalidInput, ToolkitError
from .live import job_progress_call, log_tail_call
from .sdk_inputs import _nothing_to_update, _patched, _refuse_existing, _spec, encode_request
from .specs import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint
from .views import DeploymentStatus, InvokeResult, JobProgress, LogChunk

if TYPE_CHECKING:  # pragma: no cover
    from .client import HostClient
    from .jobs import Job

__all__ = [
    "ModelOperations", "OnlineEndpointOperations", "OnlineDeploymentOperations",
    "BatchEndpointOperations", "BatchDeploymentOperations", "JobOperations", "encode_request",
    "score_spec_locally",
]

TERMINAL_PROVISIONING = ("Succeeded", "Failed")


class _Ops:
    def __init__(self, client: "HostClient") -> None:
        self._client = client


class ModelOperations(_Ops):
    def list(self) -> EntityList:
        return EntityList([Entity(m, "model") for m in self._client.call("GET", "/models")], "model")

    def get(self, name: str) -> Entity:
        return Entity(self._client.call("GET", f"/models/{name}"), "model")


class OnlineEndpointOperations(_Ops):
    def __init__(self, client: "HostClient") -> None:
        super().__init__(client)
        self._creds: dict[str, tuple[float, dict[str, str]]] = {}

    def create_or_update(self, endpoint: OnlineEndpoint | dict[str, Any] | str | Path) -> Entity:
        spec = _spec(OnlineEndpoint, endpoint)
        body = spec.model_dump(mode="json", exclude_unset=False)
        if "traffic" not in spec.model_fields_set:
            body.pop("traffic")
        if "mirror_traffic" not in spec.model_fields_set:
            body.pop("mirror_traffic")
        self._creds.pop(spec.name, None)
        return Entity(self._client.call("PUT", f"/online-endpoints/{spec.name}", json=body), "online-endpoint")

    begin_create_or_update = create_or_update

    def create(self, endpoint: OnlineEndpoint | dict[str, Any] | str | Path) -> Entity:
        """Create a new endpoint; raises Conflict if one of that name exists (``create_or_update`` replaces)."""
        spec = _spec(OnlineEndpoint, endpoint)
        _refuse_existing(lambda: self.get(spec.name), f"online endpoint {spec.name!r}")
        return self.create_or_update(spec)

    def update(
        self, name: str, *, set: list[str] | None = None, traffic: dict[str, int] | None = None,
        mirror_traffic: dict[str, int] | None = None, **changes: Any,
    ) -> Entity:
        """Change an existing endpoint: fields as keywords (``auth_mode="token"``), ``set`` as
        ``["tags.team=fraud"]`` overrides, and/or its traffic tables (validated by the host)."""
        _nothing_to_update(changes, set, traffic, mirror_traffic)
        if changes or set:
            self.create_or_update(_patched(OnlineEndpoint, self.get(name), changes, set))
        if traffic is not None or mirror_traffic is not None:
            return self.update_traffic(name, traffic, mirror_traffic)
        return self.get(name)

    def get(self, name: str) -> Entity:
        return Entity(self._client.call("GET", f"/online-endpoints/{name}"), "online-endpoint")

    def list(self) -> EntityList:
        return EntityList([Entity(e, "online-endpoint") for e in self._client.call("GET", "/online-endpoints")],
                          "online-endpoint")

    def delete(self, name: str) -> Entity:
        self._creds.pop(name, None)
        return Entity(self._client.call("DELETE", f"/online-endpoints/{name}"), "deleted")

    begin_delete = delete

    def update_traffic(
        self, name: str, traffic: dict[str, int] | None = None, mirror_traffic: dict[str, int] | None = None,
    ) -> Entity:
        body = {"traffic": traffic, "mirror_traffic": mirror_traffic}
        return Entity(self._client.call("POST", f"/online-endpoints/{name}/traffic", json=body), "online-endpoint")

    def get_credentials(self, name: str) -> dict[str, Any]:
        """Keys (``primaryKey``, ``secondaryKey``) or a token (``accessToken``, ``expiryTimeUtc``...)."""
        return self._client.call("POST", f"/online-endpoints/{name}/credentials")

    get_keys = get_credentials

    def regenerate_keys(self, name: str, key_type: str = "primary") -> dict[str, Any]:
        self._creds.pop(name, None)
        return self._client.call("POST", f"/online-endpoints/{name}/regenerate-keys", json={"key_type": key_type})

    def _auth_header(self, name: str) -> dict[str, str]:
        cached = self._creds.get(name)
        if cached is None or cached[0] < time.time():
            creds = self.get_credentials(name)
            if creds.get("auth_mode") == "none":
                header: dict[str, str] = {}
            else:
                secret = creds.get("accessToken") or creds.get("primaryKey")
                header = {"Authorization": f"Bearer {secret}"}
            # Tokens are refreshed well before expiry; keys are re-read every few minutes.
            self._creds[name] = (time.time() + 300, header)
            cached = self._creds[name]
        return cached[1]

    def invoke(
        self, name: str, data: Any = None, *, request_file: str | Path | None = None,
        deployment_name: str | None = None, content_type: str | None = None, raw: bool = False,
        headers: dict[str, str] | None = None, timeout: float | None = None,
    ) -> Any:
        """Score ``data`` (DataFrame, dict, bytes, or a request file) and return the predictions.

        With ``raw=True`` the httpx response is returned (headers ``X-Deployment``, ``X-Request-Id``).
        """
        payload = request_file if request_file is not None else data
        if payload is None:
            raise InvalidInput("nothing to score: pass data or request_file")
        body, ctype = encode_request(payload, content_type)
        hdrs = {**self._auth_header(name), **(headers or {})}
        if deployment_name:
            hdrs["X-Deployment"] = deployment_name
        resp = self._client.score(f"/endpoints/{name}/score", body, ctype, hdrs, timeout=timeout)
        if raw:
            return resp
        out = resp.json()
        return out.get("predictions", out) if isinstance(out, dict) else out

    def invoke_raw(
        self, name: str, data: Any, *, deployment_name: str | None = None, content_type: str | None = None,
        headers: dict[str, str] | None = None, timeout: float | None = None,
    ) -> InvokeResult:
        """Score ``data`` and return the answer whatever its status (a test panel shows it):
        status, serving deployment, request id, latency, body and predictions.  Only a host that
        cannot be reached (or an endpoint that does not exist) raises."""
        body, ctype = encode_request(data, content_type)
        hdrs = {**self._auth_header(name), **(headers or {})}
        if deployment_name:
            hdrs["X-Deployment"] = deployment_name
        started = time.perf_counter()
        resp = self._client.score(f"/endpoints/{name}/score", body, ctype, hdrs, timeout=timeout, raise_errors=False)
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            answer: Any = resp.json()
        except ValueError:
            answer = resp.text
        predictions = answer.get("predictions") if resp.status_code < 400 and isinstance(answer, dict) else None
        return InvokeResult(status_code=resp.status_code, deployment=resp.headers.get("x-deployment"),
                            request_id=resp.headers.get("x-request-id"), latency_ms=round(latency_ms, 3),
                            body=answer, predictions=predictions)

    def stats(self, name: str | None = None) -> dict[str, Any]:
        return self._client.call("GET", "/stats", params={"endpoint": name} if name else None)

    def events(self, name: str, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return self._client.call("GET", "/events", params={"endpoint": name, "since": since, "limit": limit})


class OnlineDeploymentOperations(_Ops):
    def __init__(self, client: "HostClient", endpoints: OnlineEndpointOperations) -> None:
        super().__init__(client)
        self._endpoints = endpoints

    def create_or_update(
        self, deployment: OnlineDeployment | dict[str, Any] | str | Path, *, wait: bool = True,
        all_traffic: bool = False, timeout: float = 300.0,
    ) -> Entity:
        """Create or update; with ``wait`` return once the deployment is Succeeded (or raise why it Failed)."""
        spec = _spec(OnlineDeployment, deployment)
        path = f"/online-endpoints/{spec.endpoint_name}/deployments/{spec.name}"
        result = Entity(self._client.call("PUT", path, json=spec.to_dict()), "online-deployment")
        if wait or all_traffic:
            result = self.wait(spec.endpoint_name, spec.name, timeout=timeout)
        if all_traffic:
            self._endpoints.update_traffic(spec.endpoint_name, {spec.name: 100})
            result = self.get(spec.endpoint_name, spec.name)
        return result

    begin_create_or_update = create_or_update

    def create(
        self, deployment: OnlineDeployment | dict[str, Any] | str | Path, *, wait: bool = True,
        all_traffic: bool = False, timeout: float = 300.0,
    ) -> Entity:
        """Like ``create_or_update``, but raises Conflict if the deployment exists already."""
        spec = _spec(OnlineDeployment, deployment)
        _refuse_existing(lambda: self.get(spec.endpoint_name, spec.name),
                         f"deployment {spec.name!r} of {spec.endpoint_name!r}")
        return self.create_or_update(spec, wait=wait, all_traffic=all_traffic, timeout=timeout)

    def update(self, endpoint_name: str, name: str, *, set: list[str] | None = None, wait: bool = True,
               timeout: float = 300.0, **changes: Any) -> Entity:
        """Change fields of an existing deployment (keywords and/or ``set`` overrides); its
        instances are replaced as for any update, and with ``wait`` this returns once they serve."""
        _nothing_to_update(changes, set)
        spec = _patched(OnlineDeployment, self.get(endpoint_name, name), changes, set)
        return self.create_or_update(spec, wait=wait, timeout=timeout)

    def wait(
        self, endpoint_name: str, name: str, timeout: float = 300.0, *, stop: threading.Event | None = None,
        on_progress: Callable[[DeploymentStatus], None] | None = None, interval: float = 0.25,
    ) -> Entity:
        """Poll until the deployment is Succeeded (returned) or Failed (raises why).

        ``on_progress(DeploymentStatus)`` is called on every poll (instances and their states;
        traffic and stats are not filled in); setting ``stop`` ends the wait at once and returns
        the deployment as it is.
        """
        deadline = time.monotonic() + timeout
        while True:
            dep = self.get(endpoint_name, name)
            state = dep.get("provisioning_state")
            if on_progress is not None:
                on_progress(DeploymentStatus.from_record(dep.to_dict()))
            if state == "Succeeded":
                return dep
            if state == "Failed":
                raise DeploymentFailed(f"deployment {name!r} of {endpoint_name!r} failed: {dep.get('message') or 'see its logs'}")
            if time.monotonic() > deadline:
                raise ToolkitError(f"deployment {name!r} is still {state} after {timeout:.0f} s")
            if stop is not None:
                if stop.wait(interval):
                    return dep
            else:
                time.sleep(interval)

    def log_tail(self, endpoint_name: str, name: str, *, instance: str | None = None, offset: int | None = None,
                 max_bytes: int = 65536) -> LogChunk:
        """An instance's log from ``offset`` (None: the last ``max_bytes``); pass the chunk's
        ``offset`` and ``instance`` back to get only what was appended since."""
        return self._client.run(log_tail_call(endpoint_name, name, instance=instance, offset=offset,
                                              max_bytes=max_bytes))

    def get(self, endpoint_name: str, name: str) -> Entity:
        return Entity(self._client.call("GET", f"/online-endpoints/{endpoint_name}/deployments/{name}"), "online-deployment")

    def list(self, endpoint_name: str) -> EntityList:
        items = self._client.call("GET", f"/online-endpoints/{endpoint_name}/deployments")
        return EntityList([Entity(d, "online-deployment") for d in items], "online-deployment")

    def delete(self, endpoint_name: str, name: str) -> Entity:
        return Entity(self._client.call("DELETE", f"/online-endpoints/{endpoint_name}/deployments/{name}"), "deleted")

    begin_delete = delete

    def get_logs(self, endpoint_name: str, name: str, lines: int = 100) -> str:
        out = self._client.call("GET", f"/online-endpoints/{endpoint_name}/deployments/{name}/logs", params={"lines": lines})
        return out["logs"]

    def test(self, deployment: OnlineDeployment | dict[str, Any] | str | Path, data: Any,
             content_type: str | None = None) -> tuple[int, Any]:
        """Score ``data`` with the spec in this process, creating nothing (Azure's local endpoint)."""
        return score_spec_locally(deployment, data, content_type)


def score_spec_locally(deployment: OnlineDeployment | dict[str, Any] | str | Path, data: Any,
                       content_type: str | None = None, home: Any = None) -> tuple[int, Any]:
    """(status, body) of scoring ``data`` with a deployment spec in-process, as the server would."""
    from .home import Home
    from .runtime.local import score_locally
    from .registry import Registry

    spec = _spec(OnlineDeployment, deployment)
    body, ctype = encode_request(data, content_type)
    return score_locally(spec, body, ctype, Registry(home or Home.resolve()))


class BatchEndpointOperations(_Ops):
    def create_or_update(self, endpoint: BatchEndpoint | dict[str, Any] | str | Path) -> Entity:
        spec = _spec(BatchEndpoint, endpoint)
        body = spec.to_dict()
        if "defaults" not in spec.model_fields_set:
            body.pop("defaults")
        return Entity(self._client.call("PUT", f"/batch-endpoints/{spec.name}", json=body), "batch-endpoint")

    begin_create_or_update = create_or_update

    def create(self, endpoint: BatchEndpoint | dict[str, Any] | str | Path) -> Entity:
        """Create a new batch endpoint; raises Conflict if one of that name exists."""
        spec = _spec(BatchEndpoint, endpoint)
        _refuse_existing(lambda: self.get(spec.name), f"batch endpoint {spec.name!r}")
        return self.create_or_update(spec)

    def update(self, name: str, *, set: list[str] | None = None, **changes: Any) -> Entity:
        """Change fields of an existing batch endpoint (keywords and/or ``set`` overrides)."""
        _nothing_to_update(changes, set)
        return self.create_or_update(_patched(BatchEndpoint, self.get(name), changes, set))

    def get(self, name: str) -> Entity:
        return Entity(self._client.call("GET", f"/batch-endpoints/{name}"), "batch-endpoint")

    def list(self) -> EntityList:
        return EntityList([Entity(e, "batch-endpoint") for e in self._client.call("GET", "/batch-endpoints")],
                          "batch-endpoint")

    def delete(self, name: str) -> Entity:
        return Entity(self._client.call("DELETE", f"/batch-endpoints/{name}"), "deleted")

    begin_delete = delete

    def invoke(
        self, name: str, input: str | Path, *, deployment_name: str | None = None, output: str | Path | None = None,
        **overrides: Any,
    ) -> "Job":
        """Start a job over a folder, file, glob or fsspec URL; per-job overrides as keywords
        (mini_batch_size, instance_count, max_retries, timeout, error_threshold, output_file_name)."""
        from .jobs import Job

        src = str(input)
        if "://" not in src:
            src = str(Path(src).expanduser().resolve()) if not any(c in src for c in "*?[") else str(Path(src).expanduser().absolute())
        body = {"input": src, "deployment_name": deployment_name,
                "output": str(Path(output).expanduser().resolve()) if output else None,
                "overrides": {k: v for k, v in overrides.items() if v is not None}}
        return Job(self._client, self._client.call("POST", f"/batch-endpoints/{name}/jobs", json=body))


class BatchDeploymentOperations(_Ops):
    def create_or_update(
        self, deployment: BatchDeployment | dict[str, Any] | str | Path, *, set_default: bool = False,
    ) -> Entity:
        spec = _spec(BatchDeployment, deployment)
        path = f"/batch-endpoints/{spec.endpoint_name}/deployments/{spec.name}"
        return Entity(self._client.call("PUT", path, json=spec.to_dict(), params={"set_default": str(set_default).lower()}),
                      "batch-deployment")

    begin_create_or_update = create_or_update

    def create(self, deployment: BatchDeployment | dict[str, Any] | str | Path, *, set_default: bool = False) -> Entity:
        """Like ``create_or_update``, but raises Conflict if the deployment exists already."""
        spec = _spec(BatchDeployment, deployment)
        _refuse_existing(lambda: self.get(spec.endpoint_name, spec.name),
                         f"batch deployment {spec.name!r} of {spec.endpoint_name!r}")
        return self.create_or_update(spec, set_default=set_default)

    def update(self, endpoint_name: str, name: str, *, set: list[str] | None = None, set_default: bool = False,
               **changes: Any) -> Entity:
        """Change fields of an existing batch deployment (keywords and/or ``set`` overrides)."""
        _nothing_to_update(changes, set)
        spec = _patched(BatchDeployment, self.get(endpoint_name, name), changes, set)
        return self.create_or_update(spec, set_default=set_default)

    def get(self, endpoint_name: str, name: str) -> Entity:
        return Entity(self._client.call("GET", f"/batch-endpoints/{endpoint_name}/deployments/{name}"), "batch-deployment")

    def list(self, endpoint_name: str) -> EntityList:
        items = self._client.call("GET", f"/batch-endpoints/{endpoint_name}/deployments")
        return EntityList([Entity(d, "batch-deployment") for d in items], "batch-deployment")

    def delete(self, endpoint_name: str, name: str) -> Entity:
        return Entity(self._client.call("DELETE", f"/batch-endpoints/{endpoint_name}/deployments/{name}"), "deleted")

    begin_delete = delete


class JobOperations(_Ops):
    def get(self, job_id: str) -> "Job":
        from .jobs import Job

        return Job(self._client, self._client.call("GET", f"/jobs/{job_id}"))

    def list(self, endpoint_name: str | None = None, state: str | None = None) -> EntityList:
        from .jobs import Job

        params = {k: v for k, v in (("endpoint", endpoint_name), ("state", state)) if v}
        return EntityList([Job(self._client, j) for j in self._client.call("GET", "/jobs", params=params)], "job")

    def cancel(self, job_id: str) -> "Job":
        from .jobs import Job

        return Job(self._client, self._client.call("POST", f"/jobs/{job_id}/cancel"))

    begin_cancel = cancel

    def stream(self, job_id: str, poll: float = 0.5) -> Iterator[dict[str, Any]]:
        return self.get(job_id).stream(poll=poll)

    def progress(self, job_id: str) -> JobProgress:
        return self._client.run(job_progress_call(job_id))

    def watch(self, job_id: str, *, interval: float = 1.0, stop: threading.Event | None = None) -> Iterator[JobProgress]:
        """Yield the job's progress on every poll; ends after the terminal state, or as soon as
        ``stop`` is set (a UI's cancel button: the wait between polls is ``stop.wait``)."""
        from .jobs import watch_job

        return watch_job(self._client, job_id, interval=interval, stop=stop)
