"""The control plane's HTTP face: ``/api/v1``, protected by the workspace's admin token.

Each route parses its request (path, query and the typed body models below), calls one method of
the :class:`toolkit.control.ControlPlane` on ``app.state.plane`` and returns its answer.  The
rules that span resources (traffic naming existing deployments, the 20-deployment limit,
cascading deletes, default batch deployments, key minting, model pinning) live there, not here.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from ..control import ControlPlane
from ..control.online import KeyType
from ..errors import Unauthorized
from ..specs import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint, TrafficTable
from .api_schema import error_responses as _errors

__all__ = ["build_router"]


class _Body(BaseModel):
    # A misspelt field must be an error, not silently ignored (`trafic` would change nothing).
    model_config = ConfigDict(extra="forbid")


class TrafficUpdate(_Body):
    traffic: TrafficTable | None = Field(None, description="Live traffic per deployment; sums to 0 or 100.")
    mirror_traffic: TrafficTable | None = Field(
        None, description="Shadow traffic: at most one deployment, at most 50, with 0 live traffic.")


class KeyRegeneration(_Body):
    # token: a new token-signing secret, which revokes every token issued so far.
    key_type: KeyType


class JobRequest(_Body):
    input: str = Field(description="A folder, file, glob or fsspec URL of the files to score.")
    deployment_name: str | None = Field(None, description="Default: the endpoint's default deployment.")
    output: str | None = Field(None, description="Folder of the job's output (default: under the job folder).")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Per-job settings: mini_batch_size, instance_count, max_retries, timeout, "
        "error_threshold, output_file_name.")


def _plane(request: Request) -> ControlPlane:
    return request.app.state.plane


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


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)], responses=_errors(401))

    # --- host ---------------------------------------------------------------------------
    @r.get("/status", tags=["host"], summary="Host URL, pid, uptime and what it holds")
    async def status(request: Request) -> dict[str, Any]:
        return _plane(request).status()

    @r.post("/shutdown", tags=["host"], summary="Stop the host and everything it started")
    async def shutdown(request: Request) -> dict[str, Any]:
        request.app.state.request_shutdown()
        return {"message": "host is shutting down"}

    # GET /events lives in live.py (cursor pages for UIs beside the old `since` list).

    @r.get("/stats", tags=["online"], summary="Per-deployment rps, latency percentiles, errors",
           responses=_errors(400, 501))
    async def stats(request: Request, endpoint: str | None = None) -> dict[str, Any]:
        return _plane(request).stats(endpoint)

    # --- models -------------------------------------------------------------------------
    @r.get("/models", tags=["models"], summary="Registered models with versions, aliases, signatures")
    async def list_models(request: Request) -> list[dict[str, Any]]:
        return await _plane(request).models()

    @r.get("/models/{name}", tags=["models"], responses=_errors(404))
    async def get_model(request: Request, name: str) -> dict[str, Any]:
        return await _plane(request).model(name)

    # --- online endpoints ---------------------------------------------------------------
    @r.get("/online-endpoints", tags=["online"])
    async def list_online_endpoints(request: Request) -> list[dict[str, Any]]:
        return _plane(request).online_endpoints()

    @r.get("/online-endpoints/{name}", tags=["online"], responses=_errors(404))
    async def get_online_endpoint(request: Request, name: str) -> dict[str, Any]:
        return _plane(request).online_endpoint(name)

    @r.put("/online-endpoints/{name}", tags=["online"], summary="Create or update an online endpoint",
           responses=_errors(400))
    async def put_online_endpoint(request: Request, name: str, spec: OnlineEndpoint) -> dict[str, Any]:
        return await _plane(request).put_online_endpoint(name, spec)

    @r.post("/online-endpoints/{name}/traffic", tags=["online"], summary="Set traffic and/or mirror traffic",
            responses=_errors(400, 404))
    async def set_traffic(request: Request, name: str, update: TrafficUpdate) -> dict[str, Any]:
        return await _plane(request).set_traffic(name, update.traffic, update.mirror_traffic)

    @r.delete("/online-endpoints/{name}", tags=["online"], summary="Delete an endpoint and all its deployments",
              responses=_errors(404))
    async def delete_online_endpoint(request: Request, name: str) -> dict[str, Any]:
        return await _plane(request).delete_online_endpoint(name)

    @r.post("/online-endpoints/{name}/credentials", tags=["online"], summary="Keys, or a fresh token",
            responses=_errors(404))
    async def get_credentials(request: Request, name: str) -> dict[str, Any]:
        return _plane(request).credentials(name)

    @r.post("/online-endpoints/{name}/regenerate-keys", tags=["online"], responses=_errors(400, 404))
    async def regenerate_keys(request: Request, name: str, body: KeyRegeneration) -> dict[str, Any]:
        return await _plane(request).regenerate_keys(name, body.key_type)

    # --- online deployments -------------------------------------------------------------
    @r.get("/online-endpoints/{endpoint}/deployments", tags=["online"], responses=_errors(404))
    async def list_online_deployments(request: Request, endpoint: str) -> list[dict[str, Any]]:
        return _plane(request).online_deployments(endpoint)

    @r.get("/online-endpoints/{endpoint}/deployments/{name}", tags=["online"], responses=_errors(404))
    async def get_online_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        return _plane(request).online_deployment(endpoint, name)

    @r.put("/online-endpoints/{endpoint}/deployments/{name}", tags=["online"],
           summary="Create or update a deployment (returns at once; poll provisioning_state)",
           responses=_errors(400, 404, 409, 501))
    async def put_online_deployment(request: Request, endpoint: str, name: str, spec: OnlineDeployment) -> dict[str, Any]:
        return await _plane(request).put_online_deployment(endpoint, name, spec)

    @r.delete("/online-endpoints/{endpoint}/deployments/{name}", tags=["online"], responses=_errors(404, 409))
    async def delete_online_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        return await _plane(request).delete_online_deployment(endpoint, name)

    @r.get("/online-endpoints/{endpoint}/deployments/{name}/logs", tags=["online"], responses=_errors(400, 404, 501))
    async def deployment_logs(request: Request, endpoint: str, name: str, lines: int = Query(100, ge=1, le=100_000)) -> dict[str, Any]:
        return _plane(request).deployment_logs(endpoint, name, lines)

    # --- batch endpoints ----------------------------------------------------------------
    @r.get("/batch-endpoints", tags=["batch"])
    async def list_batch_endpoints(request: Request) -> list[dict[str, Any]]:
        return _plane(request).batch_endpoints()

    @r.get("/batch-endpoints/{name}", tags=["batch"], responses=_errors(404))
    async def get_batch_endpoint(request: Request, name: str) -> dict[str, Any]:
        return _plane(request).batch_endpoint(name)

    @r.put("/batch-endpoints/{name}", tags=["batch"], summary="Create or update a batch endpoint",
           responses=_errors(400))
    async def put_batch_endpoint(request: Request, name: str, spec: BatchEndpoint) -> dict[str, Any]:
        return await _plane(request).put_batch_endpoint(name, spec)

    @r.delete("/batch-endpoints/{name}", tags=["batch"], responses=_errors(404, 409))
    async def delete_batch_endpoint(request: Request, name: str) -> dict[str, Any]:
        return await _plane(request).delete_batch_endpoint(name)

    @r.post("/batch-endpoints/{name}/jobs", tags=["batch"], summary="Invoke: create a job",
            responses=_errors(400, 404, 409, 501))
    async def invoke_batch(request: Request, name: str, body: JobRequest) -> dict[str, Any]:
        return await _plane(request).submit_job(name, body.input, deployment_name=body.deployment_name,
                                                output=body.output, overrides=body.overrides)

    # --- batch deployments --------------------------------------------------------------
    @r.get("/batch-endpoints/{endpoint}/deployments", tags=["batch"], responses=_errors(404))
    async def list_batch_deployments(request: Request, endpoint: str) -> list[dict[str, Any]]:
        return _plane(request).batch_deployments(endpoint)

    @r.get("/batch-endpoints/{endpoint}/deployments/{name}", tags=["batch"], responses=_errors(404))
    async def get_batch_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        return _plane(request).batch_deployment(endpoint, name)

    @r.put("/batch-endpoints/{endpoint}/deployments/{name}", tags=["batch"],
           summary="Create or update a batch deployment", responses=_errors(400, 404))
    async def put_batch_deployment(
        request: Request, endpoint: str, name: str, spec: BatchDeployment, set_default: bool = False,
    ) -> dict[str, Any]:
        return await _plane(request).put_batch_deployment(endpoint, name, spec, set_default=set_default)

    @r.delete("/batch-endpoints/{endpoint}/deployments/{name}", tags=["batch"], responses=_errors(404, 409))
    async def delete_batch_deployment(request: Request, endpoint: str, name: str) -> dict[str, Any]:
        return await _plane(request).delete_batch_deployment(endpoint, name)

    # --- jobs -----------------------------------------------------------------------------
    @r.get("/jobs", tags=["batch"])
    async def list_jobs(request: Request, endpoint: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return _plane(request).jobs(endpoint, state)

    @r.get("/jobs/{job_id}", tags=["batch"], responses=_errors(404))
    async def get_job(request: Request, job_id: str) -> dict[str, Any]:
        return _plane(request).job(job_id)

    @r.post("/jobs/{job_id}/cancel", tags=["batch"], responses=_errors(404, 501))
    async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
        return await _plane(request).cancel_job(job_id)

    # --- advisor --------------------------------------------------------------------------
    @r.post("/advise", tags=["advisor"], summary="Recommend online or batch for a workload",
            responses=_errors(400, 404, 408, 424, 501))
    async def advise(request: Request, body: dict[str, Any] = Body(
        ..., description="A workload (docs/advisor.md): model, frequency, and latency_ms or deadline, rates or rows; "
        "the advisor names any field it cannot read.",
    )) -> dict[str, Any]:
        return await _plane(request).advise(body)

    return r
