"""The control plane: ``/api/v1``, protected by the workspace's admin token.

Handlers validate a spec against the rules that span resources (traffic naming existing
deployments, the 20-deployment limit, a deployment with traffic not being deleted), resolve model
aliases to versions, write the store, and then tell the online or batch service.  Slow work
happens in the services' background tasks; callers poll ``provisioning_state``.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import Conflict, InvalidSpec, NotAvailableYet, NotFound, Unauthorized
from .. import credentials as auth
from ..specs import (
    MAX_DEPLOYMENTS_PER_ENDPOINT, BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint, TrafficTable,
    parse_spec,
)
from ..store import Resource
from .api_schema import error_responses as _errors
from ..context import HostContext

__all__ = ["build_router"]

OE, OD, BE, BD = "online-endpoint", "online-deployment", "batch-endpoint", "batch-deployment"
ACTIVE_JOB_STATES = ("NotStarted", "Queued", "Running", "Finalizing", "CancelRequested")


class _Body(BaseModel):
    # A misspelt field must be an error, not silently ignored (`trafic` would change nothing).
    model_config = ConfigDict(extra="forbid")


class TrafficUpdate(_Body):
    traffic: TrafficTable | None = Field(None, description="Live traffic per deployment; sums to 0 or 100.")
    mirror_traffic: TrafficTable | None = Field(
        None, description="Shadow traffic: at most one deployment, at most 50, with 0 live traffic.")


class KeyRegeneration(_Body):
    # token: a new token-signing secret, which revokes every token issued so far.
    key_type: Literal["primary", "secondary", "token"]


class JobRequest(_Body):
    input: str = Field(description="A folder, file, glob or fsspec URL of the files to score.")
    deployment_name: str | None = Field(None, description="Default: the endpoint's default deployment.")
    output: str | None = Field(None, description="Folder of the job's output (default: under the job folder).")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Per-job settings: mini_batch_size, instance_count, max_retries, timeout, "
        "error_threshold, output_file_name.")


def _ctx(request: Request) -> HostContext:
    return request.app.state.ctx


# Declared for the OpenAPI document (Swagger's Authorize button, fuzzers); require_admin checks.
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="adminToken",
                           description="The workspace's admin token, from <home>/endpoints/admin-token.")


async def require_admin(request: Request, _: Any = Security(_admin_bearer)) -> None:
    """Every control-plane call carries ``Authorization: Bearer <admin token>``."""
    expected: str = request.app.state.admin_token
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise Unauthorized(
            "missing or invalid admin token: send 'Authorization: Bearer <token>' "
            "(the token is in <home>/endpoints/admin-token)"
        )


def _same_name(path_name: str, spec_name: str, field: str = "name") -> None:
    if path_name != spec_name:
        raise InvalidSpec(f"{field}: {spec_name!r} does not match the name in the URL ({path_name!r})")


# --- views --------------------------------------------------------------------------------


def _endpoint_view(ctx: HostContext, r: Resource) -> dict[str, Any]:
    out = r.to_dict()
    base = ctx.settings.url
    out["scoring_uri"] = f"{base}/endpoints/{r.name}/score"
    out["swagger_uri"] = f"{base}/endpoints/{r.name}/swagger.json"
    out["openapi_uri"] = out["swagger_uri"]
    out["v2_uri"] = f"{base}/v2/models/{r.name}/infer"
    out["deployments"] = [d.name for d in ctx.store.list(OD, r.name)]
    return out


def _deployment_view(ctx: HostContext, r: Resource, events: int = 10) -> dict[str, Any]:
    out = r.to_dict()
    if ctx.online is not None:
        try:
            out.update(ctx.online.describe(r.endpoint, r.name))
        except Exception as err:  # a view must not fail because a live detail is missing
            out["instances_error"] = str(err)
    out["events"] = [e.to_dict() for e in ctx.store.events(endpoint=r.endpoint, deployment=r.name, limit=events)]
    return out


def _batch_endpoint_view(ctx: HostContext, r: Resource) -> dict[str, Any]:
    out = r.to_dict()
    out["scoring_uri"] = f"{ctx.settings.url}/api/v1/batch-endpoints/{r.name}/jobs"
    out["deployments"] = [d.name for d in ctx.store.list(BD, r.name)]
    return out


def _online(ctx: HostContext) -> Any:
    if ctx.online is None:
        raise NotAvailableYet("online serving is not available in this build of the host")
    return ctx.online


def _batch(ctx: HostContext) -> Any:
    if ctx.batch is None:
        raise NotAvailableYet("batch jobs are not available in this build of the host")
    return ctx.batch


def _check_traffic(ctx: HostContext, spec: OnlineEndpoint) -> None:
    names = {d.name for d in ctx.store.list(OD, spec.name)}
    for field, table in (("traffic", spec.traffic), ("mirror_traffic", spec.mirror_traffic)):
        for dep in table:
            # Even a 0 entry: a typo in a deployment's name must not be saved as if it meant something.
            if dep not in names:
                known = f"; its deployments: {', '.join(sorted(names))}" if names else "; it has no deployments yet"
                raise InvalidSpec(f"{field}.{dep}: endpoint {spec.name!r} has no deployment named {dep!r}{known}")
    failed = [d.name for d in ctx.store.list(OD, spec.name) if d.provisioning_state == "Failed"]
    for dep in failed:
        if spec.traffic.get(dep, 0) > 0:
            raise InvalidSpec(f"traffic.{dep}: deployment {dep!r} is Failed and cannot take traffic")


def _check_model(ctx: HostContext, model: str, field: str = "model") -> Any:
    try:
        return ctx.registry.resolve(model)
    except (NotFound, InvalidSpec) as err:
        raise type(err)(f"{field}: {err.message}") from None


def _check_location(field: str, value: Any) -> None:
    """Job inputs and outputs name places on the host's machine: a relative path would silently
    mean "relative to wherever the host was started" (the SDK and CLI send absolute paths)."""
    if not isinstance(value, str):
        raise InvalidSpec(f"{field}: must be a path or URL string, got {type(value).__name__}")
    if not value.strip() or ("://" in value and not value.startswith("file://")):
        return  # empty: the batch service names the problem; URLs: fsspec's business
    path = value.removeprefix("file://")
    if not (os.path.isabs(path) or path.startswith("~")):
        raise InvalidSpec(f"{field}: {value!r} is relative; give an absolute path (the host does not know "
                          "your working folder)")


def _check_code(spec: OnlineDeployment | BatchDeployment) -> None:
    cc = spec.code_configuration
    if cc is None:
        return
    path = cc.script_path()
    if not Path(cc.code).is_dir():
        raise InvalidSpec(f"code_configuration.code: folder {cc.code!r} does not exist")
    if not path.is_file():
        raise InvalidSpec(f"code_configuration.scoring_script: {str(path)!r} does not exist")


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)], responses=_errors(401))

    # --- host ---------------------------------------------------------------------------
    @r.get("/status", tags=["host"], summary="Host URL, pid, uptime and what it holds")
    async def status(request: Request) -> dict[str, Any]:
        ctx = _ctx(request)
        jobs: dict[str, int] = {}
        for j in ctx.store.list_jobs():
            jobs[j["state"]] = jobs.get(j["state"], 0) + 1
        out: dict[str, Any] = {
            "url": ctx.settings.url, "pid": os.getpid(), "home": str(ctx.home.root), "version": __version__,
            "started_at": ctx.settings.started_at, "uptime_s": round(time.time() - ctx.settings.started_at, 1),
            "tracking_uri": ctx.home.tracking_uri.split("?")[0],
            "online_endpoints": len(ctx.store.list(OE)), "online_deployments": len(ctx.store.list(OD)),
            "batch_endpoints": len(ctx.store.list(BE)), "batch_deployments": len(ctx.store.list(BD)),
            "jobs": jobs,
        }
        if ctx.batch is not None:
            try:
                out["cluster"] = ctx.batch.cluster_info()
            except Exception as err:
                out["cluster"] = {"error": str(err)}
        return out

    @r.post("/shutdown", tags=["host"], summary="Stop the host and everything it started")
    async def shutdown(request: Request) -> dict[str, Any]:
        request.app.state.request_shutdown()
        return {"message": "host is shutting down"}

    # GET /events lives in live.py (cursor pages for UIs beside the old `since` list).

    @r.get("/stats", tags=["online"], summary="Per-deployment rps, latency percentiles, errors",
           responses=_errors(400, 501))
    async def stats(request: Request, endpoint: str | None = None) -> dict[str, Any]:
        return _online(_ctx(request)).stats(endpoint)

    # --- models -------------------------------------------------------------------------
    @r.get("/models", tags=["models"], summary="Registered models with versions, aliases, signatures")
    async def list_models(request: Request) -> list[dict[str, Any]]:
        reg = _ctx(request).registry
        return [m.to_dict() for m in await asyncio.to_thread(reg.list_models)]

    @r.get("/models/{name}", tags=["models"], responses=_errors(404))
    async def get_model(request: Request, name: str) -> dict[str, Any]:
        reg = _ctx(request).registry
        return (await asyncio.to_thread(reg.get_model, name)).to_dict()

    # --- online endpoints ---------------------------------------------------------------
    @r.get("/online-endpoints", tags=["online"])
    async def list_online_endpoints(request: Request) -> list[dict[str, Any]]:
        ctx = _ctx(request)
        return [_endpoint_view(ctx, e) for e in ctx.store.list(OE)]

    @r.get("/online-endpoints/{name}", tags=["online"], responses=_errors(404))
    async def get_online_endpoint(request: Request, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        return _endpoint_view(ctx, ctx.store.get(OE, name))

    @r.put("/online-endpoints/{name}", tags=["online"], summary="Create or update an online endpoint",
           responses=_errors(400))
    async def put_online_endpoint(request: Request, name: str, spec: OnlineEndpoint) -> dict[str, Any]:
        ctx = _ctx(request)
        _same_name(name, spec.name)
        existing = ctx.store.find(OE, name)
        if existing is not None:
            # A spec file without traffic must not wipe the traffic set with `update --traffic`.
            for field in ("traffic", "mirror_traffic"):
                if field not in spec.model_fields_set:
                    setattr(spec, field, existing.spec.get(field, {}))
            spec = parse_spec(OnlineEndpoint, spec.to_dict())
        if spec.auth_mode == "none" and not ctx.settings.loopback:
            raise InvalidSpec("auth_mode: 'none' is only allowed when the host listens on loopback")
        _check_traffic(ctx, spec)
        res = ctx.store.put(OE, name, name, spec.to_dict(), "Succeeded")
        if ctx.store.get_secrets(name) is None:
            ctx.store.put_secrets(name, **auth.new_secrets())
        ctx.event("EndpointUpdated" if existing else "EndpointCreated",
                  f"auth_mode={spec.auth_mode} traffic={spec.traffic or {}} mirror={spec.mirror_traffic or {}}",
                  endpoint=name)
        if ctx.online is not None:
            await ctx.online.endpoint_changed(name)
        return _endpoint_view(ctx, res)

    @r.post("/online-endpoints/{name}/traffic", tags=["online"], summary="Set traffic and/or mirror traffic",
            responses=_errors(400, 404))
    async def set_traffic(request: Request, name: str, update: TrafficUpdate) -> dict[str, Any]:
        ctx = _ctx(request)
        current = ctx.store.get(OE, name).spec
        if update.traffic is not None:
            current["traffic"] = update.traffic
            # Giving a deployment live traffic ends its mirroring (a mirror must have 0 live traffic).
            current["mirror_traffic"] = {k: v for k, v in current.get("mirror_traffic", {}).items()
                                         if update.traffic.get(k, 0) == 0}
        if update.mirror_traffic is not None:
            current["mirror_traffic"] = update.mirror_traffic
        spec = parse_spec(OnlineEndpoint, current)
        _check_traffic(ctx, spec)
        res = ctx.store.put(OE, name, name, spec.to_dict(), "Succeeded")
        ctx.event("TrafficUpdated", f"traffic={spec.traffic} mirror={spec.mirror_traffic}", endpoint=name)
        if ctx.online is not None:
            await ctx.online.endpoint_changed(name)
        return _endpoint_view(ctx, res)

    @r.delete("/online-endpoints/{name}", tags=["online"], summary="Delete an endpoint and all its deployments",
              responses=_errors(404))
    async def delete_online_endpoint(request: Request, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        ctx.store.get(OE, name)
        ctx.store.set_state(OE, name, name, "Deleting")
        for d in ctx.store.list(OD, name):
            ctx.store.set_state(OD, name, d.name, "Deleting")
        if ctx.online is not None:
            await ctx.online.endpoint_deleted(name)
        ctx.store.delete_children(OD, name)
        ctx.store.delete(OE, name)
        ctx.store.delete_secrets(name)
        ctx.event("EndpointDeleted", "endpoint and its deployments deleted", endpoint=name)
        return {"name": name, "deleted": True}

    @r.post("/online-endpoints/{name}/credentials", tags=["online"], summary="Keys, or a fresh token",
            responses=_errors(404))
    async def get_credentials(request: Request, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        spec = ctx.store.get(OE, name).spec
        secrets_row = ctx.store.get_secrets(name)
        if secrets_row is None:
            raise NotFound(f"endpoint {name!r} has no credentials")
        if spec["auth_mode"] == "token":
            return {"auth_mode": "token", **auth.issue_token(name, secrets_row["token_secret"])}
        return {"auth_mode": spec["auth_mode"], "primaryKey": secrets_row["primary_key"],
                "secondaryKey": secrets_row["secondary_key"]}

    @r.post("/online-endpoints/{name}/regenerate-keys", tags=["online"], responses=_errors(400, 404))
    async def regenerate_keys(request: Request, name: str, body: KeyRegeneration) -> dict[str, Any]:
        ctx = _ctx(request)
        ctx.store.get(OE, name)
        ctx.store.put_secrets(name, **auth.regenerated(ctx.store.get_secrets(name), body.key_type))
        ctx.event("KeyRegenerated", "the token-signing secret was rotated: tokens issued before are revoked"
                  if body.key_type == "token" else f"the {body.key_type} key was regenerated", endpoint=name)
        if ctx.online is not None:
            await ctx.online.endpoint_changed(name)
        return {"name": name, "regenerated": body.key_type}

    # --- online deployments -------------------------------------------------------------
    @r.get("/online-endpoints/{endpoint}/deployments", tags=["online"], responses=_errors(404))
    async def list_online_deployments(request: Request, endpoint: str) -> list[dict[str, Any]]:
        ctx = _ctx(request)
        ctx.store.get(OE, endpoint)
        return [_deployment_view(ctx, d, events=0) for d in ctx.store.list(OD, endpoint)]

    @r.get("/online-endpoints/{endpoint}/deployments/{name}", tags=["online"], responses=_errors(404))
    async def get_online_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        return _deployment_view(ctx, ctx.store.get(OD, endpoint, name))

    @r.put("/online-endpoints/{endpoint}/deployments/{name}", tags=["online"],
           summary="Create or update a deployment (returns at once; poll provisioning_state)",
           responses=_errors(400, 404, 409, 501))
    async def put_online_deployment(request: Request, endpoint: str, name: str, spec: OnlineDeployment) -> dict[str, Any]:
        ctx = _ctx(request)
        _same_name(name, spec.name)
        _same_name(endpoint, spec.endpoint_name, "endpoint_name")
        ctx.store.get(OE, endpoint)
        existing = ctx.store.find(OD, endpoint, name)
        if existing is None and len(ctx.store.list(OD, endpoint)) >= MAX_DEPLOYMENTS_PER_ENDPOINT:
            raise Conflict(f"endpoint {endpoint!r} already has {MAX_DEPLOYMENTS_PER_ENDPOINT} deployments (the limit)")
        if existing is not None and existing.provisioning_state in ("Creating", "Updating", "Deleting"):
            raise Conflict(f"deployment {name!r} is {existing.provisioning_state}; wait for it to finish")
        _check_code(spec)
        resolved = await asyncio.to_thread(_check_model, ctx, spec.model)
        state = "Updating" if existing else "Creating"
        ctx.store.put(OD, endpoint, name, spec.to_dict(), state, model_version=resolved.label)
        ctx.event("DeploymentUpdating" if existing else "DeploymentCreating",
                  f"model {spec.model} resolved to {resolved.label}; {spec.instance_count} x {spec.instance_type}",
                  endpoint=endpoint, deployment=name)
        await _online(ctx).deploy(endpoint, name)
        return _deployment_view(ctx, ctx.store.get(OD, endpoint, name))

    @r.delete("/online-endpoints/{endpoint}/deployments/{name}", tags=["online"], responses=_errors(404, 409))
    async def delete_online_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        ep = ctx.store.get(OE, endpoint).spec
        ctx.store.get(OD, endpoint, name)
        if ep.get("traffic", {}).get(name, 0) > 0:
            raise Conflict(
                f"deployment {name!r} has {ep['traffic'][name]}% live traffic; move its traffic to other "
                "deployments first (online-endpoint update --traffic)"
            )
        if ep.get("mirror_traffic", {}).get(name, 0) > 0:
            raise Conflict(f"deployment {name!r} receives mirrored traffic; set its mirror_traffic to 0 first")
        ctx.store.set_state(OD, endpoint, name, "Deleting")
        if ctx.online is not None:
            await ctx.online.undeploy(endpoint, name)
        ctx.store.delete(OD, endpoint, name)
        # Drop zero entries naming the deleted deployment so the traffic table stays clean.
        for field in ("traffic", "mirror_traffic"):
            ep[field] = {k: v for k, v in ep.get(field, {}).items() if k != name}
        ctx.store.put(OE, endpoint, endpoint, ep, "Succeeded")
        ctx.event("DeploymentDeleted", "deployment deleted", endpoint=endpoint, deployment=name)
        if ctx.online is not None:
            await ctx.online.endpoint_changed(endpoint)
        return {"endpoint": endpoint, "name": name, "deleted": True}

    @r.get("/online-endpoints/{endpoint}/deployments/{name}/logs", tags=["online"], responses=_errors(400, 404, 501))
    async def deployment_logs(request: Request, endpoint: str, name: str, lines: int = Query(100, ge=1, le=100_000)) -> dict[str, Any]:
        ctx = _ctx(request)
        ctx.store.get(OD, endpoint, name)
        return {"endpoint": endpoint, "name": name, "logs": _online(ctx).logs(endpoint, name, lines)}

    # --- batch endpoints ----------------------------------------------------------------
    @r.get("/batch-endpoints", tags=["batch"])
    async def list_batch_endpoints(request: Request) -> list[dict[str, Any]]:
        ctx = _ctx(request)
        return [_batch_endpoint_view(ctx, e) for e in ctx.store.list(BE)]

    @r.get("/batch-endpoints/{name}", tags=["batch"], responses=_errors(404))
    async def get_batch_endpoint(request: Request, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        return _batch_endpoint_view(ctx, ctx.store.get(BE, name))

    @r.put("/batch-endpoints/{name}", tags=["batch"], summary="Create or update a batch endpoint",
           responses=_errors(400))
    async def put_batch_endpoint(request: Request, name: str, spec: BatchEndpoint) -> dict[str, Any]:
        ctx = _ctx(request)
        _same_name(name, spec.name)
        existing = ctx.store.find(BE, name)
        if existing is not None and "defaults" not in spec.model_fields_set:
            spec = parse_spec(BatchEndpoint, {**spec.to_dict(), "defaults": existing.spec.get("defaults", {})})
        default = spec.defaults.deployment_name
        if default and ctx.store.find(BD, name, default) is None:
            raise InvalidSpec(f"defaults.deployment_name: endpoint {name!r} has no deployment named {default!r}")
        res = ctx.store.put(BE, name, name, spec.to_dict(), "Succeeded")
        ctx.event("EndpointUpdated" if existing else "EndpointCreated", "batch endpoint saved", endpoint=name)
        return _batch_endpoint_view(ctx, res)

    @r.delete("/batch-endpoints/{name}", tags=["batch"], responses=_errors(404, 409))
    async def delete_batch_endpoint(request: Request, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        ctx.store.get(BE, name)
        active = ctx.store.list_jobs(endpoint=name, states=ACTIVE_JOB_STATES)
        if active:
            raise Conflict(f"batch endpoint {name!r} has {len(active)} active job(s); cancel them first "
                           f"({', '.join(j['id'] for j in active[:3])})")
        ctx.store.delete_children(BD, name)
        ctx.store.delete(BE, name)
        ctx.event("EndpointDeleted", "batch endpoint and its deployments deleted", endpoint=name)
        return {"name": name, "deleted": True}

    @r.post("/batch-endpoints/{name}/jobs", tags=["batch"], summary="Invoke: create a job",
            responses=_errors(400, 404, 409, 501))
    async def invoke_batch(request: Request, name: str, body: JobRequest) -> dict[str, Any]:
        ctx = _ctx(request)
        ep = ctx.store.get(BE, name).spec
        dep = body.deployment_name or (ep.get("defaults") or {}).get("deployment_name")
        if not dep:
            raise InvalidSpec(f"deployment_name: batch endpoint {name!r} has no default deployment; "
                              "name one or set a default (batch-deployment create --set-default)")
        ctx.store.get(BD, name, dep)
        overrides = dict(body.overrides)
        if body.output:
            overrides["output"] = body.output
        _check_location("input", body.input)
        if "output" in overrides:
            _check_location("output", overrides["output"])
        return await _batch(ctx).submit(name, dep, body.input, overrides)

    # --- batch deployments --------------------------------------------------------------
    @r.get("/batch-endpoints/{endpoint}/deployments", tags=["batch"], responses=_errors(404))
    async def list_batch_deployments(request: Request, endpoint: str) -> list[dict[str, Any]]:
        ctx = _ctx(request)
        ctx.store.get(BE, endpoint)
        return [d.to_dict() for d in ctx.store.list(BD, endpoint)]

    @r.get("/batch-endpoints/{endpoint}/deployments/{name}", tags=["batch"], responses=_errors(404))
    async def get_batch_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        return ctx.store.get(BD, endpoint, name).to_dict()

    @r.put("/batch-endpoints/{endpoint}/deployments/{name}", tags=["batch"],
           summary="Create or update a batch deployment", responses=_errors(400, 404))
    async def put_batch_deployment(
        request: Request, endpoint: str, name: str, spec: BatchDeployment, set_default: bool = False,
    ) -> dict[str, Any]:
        ctx = _ctx(request)
        _same_name(name, spec.name)
        _same_name(endpoint, spec.endpoint_name, "endpoint_name")
        ep = ctx.store.get(BE, endpoint)
        existing = ctx.store.find(BD, endpoint, name)
        _check_code(spec)
        resolved = await asyncio.to_thread(_check_model, ctx, spec.model)
        res = ctx.store.put(BD, endpoint, name, spec.to_dict(), "Succeeded", model_version=resolved.label)
        ctx.event("DeploymentUpdated" if existing else "DeploymentCreated",
                  f"model {spec.model} resolved to {resolved.label}; compute={spec.compute}",
                  endpoint=endpoint, deployment=name)
        defaults = ep.spec.get("defaults") or {}
        # The first deployment becomes the default, so `invoke` works without naming one.
        if set_default or not defaults.get("deployment_name"):
            ep.spec["defaults"] = {**defaults, "deployment_name": name}
            ctx.store.put(BE, endpoint, endpoint, ep.spec, "Succeeded")
            ctx.event("DefaultDeploymentSet", f"default deployment is now {name!r}", endpoint=endpoint)
        return res.to_dict()

    @r.delete("/batch-endpoints/{endpoint}/deployments/{name}", tags=["batch"], responses=_errors(404, 409))
    async def delete_batch_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        ctx = _ctx(request)
        ep = ctx.store.get(BE, endpoint).spec
        ctx.store.get(BD, endpoint, name)
        others = [d.name for d in ctx.store.list(BD, endpoint) if d.name != name]
        if (ep.get("defaults") or {}).get("deployment_name") == name and others:
            raise Conflict(f"deployment {name!r} is the default of {endpoint!r}; make another one the default first")
        active = [j for j in ctx.store.list_jobs(endpoint=endpoint, states=ACTIVE_JOB_STATES) if j["deployment"] == name]
        if active:
            raise Conflict(f"deployment {name!r} has {len(active)} active job(s); cancel them first")
        ctx.store.delete(BD, endpoint, name)
        if (ep.get("defaults") or {}).get("deployment_name") == name:
            ep["defaults"] = {"deployment_name": None}
            ctx.store.put(BE, endpoint, endpoint, ep, "Succeeded")
        ctx.event("DeploymentDeleted", "batch deployment deleted", endpoint=endpoint, deployment=name)
        return {"endpoint": endpoint, "name": name, "deleted": True}

    # --- jobs -----------------------------------------------------------------------------
    @r.get("/jobs", tags=["batch"])
    async def list_jobs(request: Request, endpoint: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        ctx = _ctx(request)
        if ctx.batch is not None:
            jobs = ctx.batch.jobs(endpoint)
            return [j for j in jobs if state is None or j["state"] == state]
        return ctx.store.list_jobs(endpoint=endpoint, states=(state,) if state else None)

    @r.get("/jobs/{job_id}", tags=["batch"], responses=_errors(404))
    async def get_job(request: Request, job_id: str) -> dict[str, Any]:
        ctx = _ctx(request)
        return ctx.batch.job(job_id) if ctx.batch is not None else ctx.store.get_job(job_id)

    @r.post("/jobs/{job_id}/cancel", tags=["batch"], responses=_errors(404, 501))
    async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
        ctx = _ctx(request)
        ctx.store.get_job(job_id)
        return await _batch(ctx).cancel(job_id)

    # --- advisor --------------------------------------------------------------------------
    @r.post("/advise", tags=["advisor"], summary="Recommend online or batch for a workload",
            responses=_errors(400, 404, 408, 424, 501))
    async def advise(request: Request, body: dict[str, Any] = Body(
        ..., description="A workload (docs/advisor.md): model, frequency, and latency_ms or deadline, rates or rows; "
        "the advisor names any field it cannot read.",
    )) -> dict[str, Any]:
        ctx = _ctx(request)
        try:
            from ..advisor import advise as run_advice
        except ImportError:
            raise NotAvailableYet("the advisor is not available in this build") from None
        advice = await asyncio.to_thread(run_advice, ctx.registry, body)
        return advice.to_dict()

    return r
