"""What the widgets read from the host, as plain dicts, through the SDK's public live calls
(``ws.snapshot``, ``ws.stats_history``, ``ws.events_page``, ``online_deployments.log_tail``,
``online_endpoints.invoke_raw``, ``jobs.progress``; see docs/sdk.md): one small function per
question a widget asks, so the widgets hold no HTTP or parsing code."""

from __future__ import annotations

import json
from typing import Any

from ..errors import NotFound

__all__ = [
    "endpoint_frame", "stats_history", "events_after", "log_tail", "invoke_raw", "job_progress",
    "model_example", "example_request",
]


def _window(stats: Any) -> dict[str, Any]:
    """The chart values of a ``StatsWindow`` (zeros when the deployment has served nothing yet)."""
    if stats is None:
        return {"rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "served": 0, "mirrored": 0}
    return {"rps": stats.rps or 0.0, "p50_ms": stats.p50_ms, "p99_ms": stats.p99_ms, "errors": stats.errors or 0,
            "served": stats.served or 0, "mirrored": stats.mirrored or 0}


def endpoint_frame(ws: Any, name: str) -> dict[str, Any]:
    """One dashboard frame (one ``ws.snapshot`` call): the endpoint, its deployments with state,
    instances and the current one-minute stats window."""
    snap = ws.snapshot(endpoint=name, events_limit=1)
    try:
        ep = snap.endpoint(name)
    except KeyError:
        raise NotFound(f"online endpoint {name!r} not found") from None
    deps = []
    for dep in ep.deployments:
        deps.append({
            "name": dep.name, "state": dep.state, "model": dep.model, "model_version": dep.model_version,
            "instance_type": dep.instance_type, "instance_count": dep.instance_count,
            "instances_ready": dep.ready_instances, "instances_total": len(dep.instances),
            "traffic": dep.traffic or 0, "mirror": dep.mirror or 0, **_window(dep.stats),
        })
    return {"name": name, "kind": ep.kind, "auth_mode": ep.auth_mode, "scoring_uri": ep.scoring_uri,
            "traffic": dict(ep.traffic or {}), "mirror_traffic": dict(ep.mirror_traffic or {}), "deployments": deps}


def stats_history(ws: Any, name: str) -> dict[str, list[dict[str, Any]]]:
    """{deployment: [points, oldest first]} of the host's recent past (10-second buckets)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for series in ws.stats_history(name):
        if series.endpoint == name:
            out[series.deployment] = [{"ts": b.ts, **_window(b)} for b in series.buckets]
    return out


def events_after(ws: Any, name: str, cursor: int) -> tuple[list[dict[str, Any]], int]:
    """Events of the endpoint after ``cursor`` (ascending, every one once) and the new cursor."""
    events: list[dict[str, Any]] = []
    while True:
        page = ws.events_page(cursor, endpoint=name)
        events += [e.to_dict() for e in page.events]
        cursor = page.cursor
        if not page.more:
            return events, cursor


def log_tail(ws: Any, endpoint: str, deployment: str, offset: int | None = None,
             instance: str | None = None) -> tuple[str, int | None, str | None]:
    """The end of a deployment's log, the offset to continue from and the instance it was read from."""
    chunk = ws.online_deployments.log_tail(endpoint, deployment, instance=instance, offset=offset)
    return chunk.text, chunk.offset, chunk.instance


def invoke_raw(ws: Any, endpoint: str, body: Any, deployment: str | None = None) -> dict[str, Any]:
    """Send one request; the answer to show (status, served by, latency, body), even for a 4xx/5xx."""
    res = ws.online_endpoints.invoke_raw(endpoint, body, deployment_name=deployment or None)
    return {"status": res.status_code, "deployment": res.deployment, "latency_ms": res.latency_ms,
            "request_id": res.request_id, "body": res.body}


def job_progress(ws: Any, job_id: str) -> dict[str, Any]:
    """State, mini-batches done/total, rows, rows/s, ETA and failed files of a job."""
    return ws.jobs.progress(job_id).to_dict()


# --- model input examples ------------------------------------------------------------------------

_PLACEHOLDER = {"long": 0, "integer": 0, "int": 0, "double": 0.0, "float": 0.0, "boolean": False,
                "string": "", "binary": "", "datetime": "2024-01-01T00:00:00"}


def model_example(version: dict[str, Any]) -> dict[str, Any] | None:
    """The ``dataframe_split`` of a model version's input example (as the SDK reports it), else a
    one-row example built from its signature's column names and types; None without either."""
    example = version.get("input_example")
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
