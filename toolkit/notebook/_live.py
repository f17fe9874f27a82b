"""What the widgets read from the host, as plain dicts, through the SDK's public methods.

The live methods (``ws.snapshot``, ``ws.stats_history``, ``ws.events_page``,
``online_deployments.log_tail``, ``online_endpoints.invoke_raw``, ``jobs.progress``) are the
SDK's live-UI contract.  Each function here uses them and, on an SDK that predates them, the
older public calls that answer the same question, so the widgets work on both.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

__all__ = [
    "endpoint_frame", "stats_history", "events_after", "log_tail", "invoke_raw", "job_progress",
    "model_example", "example_request",
]


def _d(obj: Any) -> dict[str, Any]:
    """A view (dataclass with to_dict), an Entity or a dict -> dict."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _window(stats: dict[str, Any]) -> dict[str, Any]:
    errors = stats.get("errors")
    if isinstance(errors, dict):  # the older stats API: {status: count} since start, plus a window
        errors = sum((stats.get("window_errors") or {}).values())
    return {"rps": stats.get("rps") or 0.0, "p50_ms": stats.get("p50_ms"), "p99_ms": stats.get("p99_ms"),
            "errors": errors or 0, "served": stats.get("served") or 0, "mirrored": stats.get("mirrored") or 0}


def endpoint_frame(ws: Any, name: str) -> dict[str, Any]:
    """One dashboard frame: the endpoint, its deployments with state, instances and current stats."""
    if hasattr(ws, "snapshot"):
        snap = ws.snapshot(endpoint=name)
        for ep in list(snap.online_endpoints) + list(snap.batch_endpoints):
            if ep.name != name:
                continue
            e = _d(ep)
            deps = []
            for dep in ep.deployments:
                dd = _d(dep)
                instances = dd.get("instances") or []
                deps.append({
                    "name": dd["name"], "state": dd.get("state"), "model": dd.get("model"),
                    "model_version": dd.get("model_version"), "instance_type": dd.get("instance_type"),
                    "instance_count": dd.get("instance_count"),
                    "instances_ready": sum(1 for i in instances if i.get("ready")), "instances_total": len(instances),
                    "traffic": dd.get("traffic") or 0, "mirror": dd.get("mirror") or 0,
                    **_window(dd.get("stats") or {}),
                })
            return {"name": name, "kind": e.get("kind"), "auth_mode": e.get("auth_mode"),
                    "scoring_uri": e.get("scoring_uri"), "traffic": e.get("traffic") or {},
                    "mirror_traffic": e.get("mirror_traffic") or {}, "deployments": deps}
        from ..errors import NotFound

        raise NotFound(f"online endpoint {name!r} not found")
    ep = ws.online_endpoints.get(name).to_dict()
    stats = ws.stats(name).get("deployments", {})
    deps = []
    for dep in ws.online_deployments.list(name):
        dd = dep.to_dict()
        st = stats.get(dd["name"], {})
        inst = st.get("instances") or {}
        deps.append({
            "name": dd["name"], "state": dd.get("provisioning_state"), "model": dd.get("model"),
            "model_version": dd.get("model_version"), "instance_type": dd.get("instance_type"),
            "instance_count": dd.get("instance_count"), "instances_ready": inst.get("ready", 0),
            "instances_total": inst.get("total", 0),
            "traffic": (ep.get("traffic") or {}).get(dd["name"], 0),
            "mirror": (ep.get("mirror_traffic") or {}).get(dd["name"], 0), **_window(st),
        })
    return {"name": name, "kind": "online", "auth_mode": ep.get("auth_mode"), "scoring_uri": ep.get("scoring_uri"),
            "traffic": ep.get("traffic") or {}, "mirror_traffic": ep.get("mirror_traffic") or {}, "deployments": deps}


def stats_history(ws: Any, name: str) -> dict[str, list[dict[str, Any]]]:
    """{deployment: [bucket dicts, oldest first]} of the host's recent past (empty on an older SDK)."""
    if not hasattr(ws, "stats_history"):
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for series in ws.stats_history(name):
        s = _d(series)
        if s.get("endpoint") not in (None, name):
            continue
        out[s["deployment"]] = [{"ts": b["ts"], **_window(b)} for b in (s.get("buckets") or [])]
    return out


def events_after(ws: Any, name: str, cursor: int) -> tuple[list[dict[str, Any]], int]:
    """Events of the endpoint after ``cursor`` (ascending) and the new cursor."""
    if hasattr(ws, "events_page"):
        page = ws.events_page(cursor, endpoint=name)
        return [_d(e) for e in page.events], page.cursor
    events = sorted(ws.events(endpoint=name, since=cursor), key=lambda e: e["id"])
    return events, max([cursor, *(e["id"] for e in events)])


def log_tail(ws: Any, endpoint: str, deployment: str, offset: int | None = None,
             instance: str | None = None) -> tuple[str, int | None, str | None]:
    """The end of a deployment's log, the offset to continue from and the instance it was read from."""
    ops = ws.online_deployments
    if hasattr(ops, "log_tail"):
        chunk = ops.log_tail(endpoint, deployment, instance=instance, offset=offset)
        return chunk.text, chunk.offset, chunk.instance
    return ops.get_logs(endpoint, deployment, lines=200), None, None


def invoke_raw(ws: Any, endpoint: str, body: Any, deployment: str | None = None) -> dict[str, Any]:
    """Send one request; the answer to show (status, served by, latency, body), even for a 4xx/5xx."""
    ops = ws.online_endpoints
    if hasattr(ops, "invoke_raw"):
        res = ops.invoke_raw(endpoint, body, deployment_name=deployment or None)
        return {"status": res.status_code, "deployment": res.deployment, "latency_ms": res.latency_ms,
                "request_id": res.request_id, "body": res.body}
    start = time.perf_counter()
    try:
        resp = ops.invoke(endpoint, body, deployment_name=deployment or None, raw=True)
    except ToolkitError as err:
        if err.status_code >= 500 and err.error_code in ("HostNotRunning",):
            raise
        return {"status": err.status_code, "deployment": None, "request_id": None,
                "latency_ms": (time.perf_counter() - start) * 1000, "body": {"error_code": err.error_code,
                                                                              "message": err.message}}
    try:
        answer = resp.json()
    except ValueError:
        answer = resp.text
    return {"status": resp.status_code, "deployment": resp.headers.get("x-deployment"),
            "request_id": resp.headers.get("x-request-id"), "latency_ms": (time.perf_counter() - start) * 1000,
            "body": answer}


def job_progress(ws: Any, job_id: str) -> dict[str, Any]:
    """State, mini-batches done/total, rows, rows/s, ETA and failed files of a job."""
    if hasattr(ws.jobs, "progress"):
        return _d(ws.jobs.progress(job_id))
    job = ws.jobs.get(job_id).to_dict()
    p = job.get("progress") or {}
    failed = job.get("failed_files") or p.get("failed_files") or {}
    if not isinstance(failed, dict):
        failed = {str(f): "failed" for f in failed} if isinstance(failed, list) else {}
    return {
        "id": job["id"], "endpoint": job.get("endpoint"), "deployment": job.get("deployment"),
        "state": job.get("state"), "done": job.get("state") in ("Completed", "Failed", "Canceled"),
        "mini_batches_done": (p.get("completed") or 0) + (p.get("failed") or 0),
        "mini_batches_total": p.get("total_minibatches") or 0, "rows": p.get("rows") or 0,
        "rows_per_s": p.get("rows_per_s"), "eta_s": p.get("eta_s"), "failed_files": failed,
        "error_count": len(failed), "output_path": job.get("output"), "message": job.get("message"),
    }


# --- model input examples ------------------------------------------------------------------------

_PLACEHOLDER = {"long": 0, "integer": 0, "int": 0, "double": 0.0, "float": 0.0, "boolean": False,
                "string": "", "binary": "", "datetime": "2024-01-01T00:00:00"}


@functools.lru_cache(maxsize=64)
def _registry_example(tracking_uri: str, name: str, version: str) -> str | None:
    """The version's ``input_example.json`` from the workspace registry (MLflow's public API)."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    where = client.get_model_version_download_uri(name, version).rstrip("/")
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{where}/input_example.json", tracking_uri=tracking_uri)
    return Path(path).read_text()


def model_example(version: dict[str, Any], ws: Any = None) -> dict[str, Any] | None:
    """The ``dataframe_split`` of a model version's input example (as the SDK reports it, else read
    from the workspace registry when ``ws`` is given), else a one-row example built from its
    signature's column names and types; None without either."""
    example = version.get("input_example")
    if example is None and ws is not None and version.get("has_input_example"):
        try:
            text = _registry_example(str(ws.status().get("tracking_uri")), version["name"], str(version["version"]))
            example = json.loads(text) if text else None
        except Exception:  # an unreadable example falls back to the signature
            example = None
    if isinstance(example, dict):
        if "dataframe_split" in example:
            return example["dataframe_split"]
        if "columns" in example and "data" in example:
            return {"columns": example["columns"], "data": example["data"][:5]}
    inputs = ((version.get("signature") or {}).get("inputs"))
    if isinstance(inputs, str):
        try:
            inputs = json.loads(inputs)
        except ValueError:
            inputs = None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(c, dict) and c.get("name") for c in inputs):
        return None
    return {"columns": [c["name"] for c in inputs], "data": [[_PLACEHOLDER.get(str(c.get("type")), 0) for c in inputs]]}


def example_request(ws: Any, endpoint: str, deployment: str | None = None) -> dict[str, Any] | None:
    """The example request of an endpoint's OpenAPI document (built by the host from the model's
    input example), or None when the endpoint has no deployment to describe yet."""
    import httpx

    uri = ws.online_endpoints.get(endpoint).get("swagger_uri")
    if not uri:
        return None
    creds = ws.online_endpoints.get_credentials(endpoint)
    secret = creds.get("accessToken") or creds.get("primaryKey")
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if deployment:
        headers["X-Deployment"] = deployment
    try:
        resp = httpx.get(uri, headers=headers, timeout=10)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    for path in resp.json().get("paths", {}).values():
        media = (((path.get("post") or {}).get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        if "example" in media:
            return media["example"]
    return None
