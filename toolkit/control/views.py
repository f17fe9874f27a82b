"""What the control plane answers about a resource: its stored record plus the URLs to call it
and, for an online deployment, the live view of its instances and its latest events."""

from __future__ import annotations

from typing import Any

from ..context import HostContext
from ..store import Resource
from .rules import BD, OD

__all__ = ["endpoint_view", "deployment_view", "batch_endpoint_view"]


def endpoint_view(ctx: HostContext, r: Resource) -> dict[str, Any]:
    out = r.to_dict()
    base = ctx.settings.url
    out["scoring_uri"] = f"{base}/endpoints/{r.name}/score"
    out["swagger_uri"] = f"{base}/endpoints/{r.name}/swagger.json"
    out["openapi_uri"] = out["swagger_uri"]
    out["v2_uri"] = f"{base}/v2/models/{r.name}/infer"
    out["deployments"] = [d.name for d in ctx.store.list(OD, r.name)]
    return out


def deployment_view(ctx: HostContext, r: Resource, events: int = 10) -> dict[str, Any]:
    out = r.to_dict()
    try:
        out.update(ctx.online.describe(r.endpoint, r.name))
    except Exception as err:  # a view must not fail because a live detail is missing
        out["instances_error"] = str(err)
    out["events"] = [e.to_dict() for e in ctx.store.events(endpoint=r.endpoint, deployment=r.name, limit=events)]
    return out


def batch_endpoint_view(ctx: HostContext, r: Resource) -> dict[str, Any]:
    out = r.to_dict()
    out["scoring_uri"] = f"{ctx.settings.url}/api/v1/batch-endpoints/{r.name}/jobs"
    out["deployments"] = [d.name for d in ctx.store.list(BD, r.name)]
    return out
