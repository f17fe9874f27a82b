"""Batch endpoints, deployments and jobs: the endpoint's default deployment, deletes that wait for
active jobs, and job submission (the batch service validates inputs and runs the job)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import Conflict, InvalidSpec
from ..events import EventReason
from ..context import HostContext
from ..specs import BatchDeployment, BatchEndpoint, parse_spec
from .rules import ACTIVE_JOB_STATES, BD, BE, check_code, check_location, refuse_existing, resolve_model, same_name
from .views import batch_endpoint_view

__all__ = ["BatchControl"]


class BatchControl:
    """The batch half of :class:`toolkit.control.ControlPlane`."""

    ctx: HostContext

    # --- endpoints ------------------------------------------------------------------------
    def batch_endpoints(self) -> list[dict[str, Any]]:
        return [batch_endpoint_view(self.ctx, e) for e in self.ctx.store.list(BE)]

    def batch_endpoint(self, name: str) -> dict[str, Any]:
        return batch_endpoint_view(self.ctx, self.ctx.store.get(BE, name))

    async def create_batch_endpoint(self, spec: BatchEndpoint) -> dict[str, Any]:
        """Create only: an existing endpoint is a Conflict (``update`` changes it)."""
        refuse_existing(self.ctx.store, BE, spec.name, spec.name, f"batch endpoint {spec.name!r}")
        return await self.put_batch_endpoint(spec.name, spec)

    async def put_batch_endpoint(self, name: str, spec: BatchEndpoint) -> dict[str, Any]:
        """Create or update; a spec that does not set ``defaults`` keeps the stored default, and a
        default must name one of the endpoint's deployments."""
        ctx = self.ctx
        same_name(name, spec.name)
        existing = ctx.store.find(BE, name)
        if existing is not None and "defaults" not in spec.model_fields_set:
            spec = parse_spec(BatchEndpoint, {**spec.to_dict(), "defaults": existing.spec.get("defaults", {})})
        default = spec.defaults.deployment_name
        if default and ctx.store.find(BD, name, default) is None:
            raise InvalidSpec(f"defaults.deployment_name: endpoint {name!r} has no deployment named {default!r}")
        res = ctx.store.put(BE, name, name, spec.to_dict(), "Succeeded")
        ctx.event(EventReason.EndpointUpdated if existing else EventReason.EndpointCreated, "batch endpoint saved", endpoint=name)
        return batch_endpoint_view(ctx, res)

    async def delete_batch_endpoint(self, name: str) -> dict[str, Any]:
        """Delete the endpoint and its deployments, unless a job of it is still active."""
        ctx = self.ctx
        ctx.store.get(BE, name)
        active = ctx.store.list_jobs(endpoint=name, states=ACTIVE_JOB_STATES)
        if active:
            raise Conflict(f"batch endpoint {name!r} has {len(active)} active job(s); cancel them first "
                           f"({', '.join(j['id'] for j in active[:3])})")
        ctx.store.delete_children(BD, name)
        ctx.store.delete(BE, name)
        ctx.event(EventReason.EndpointDeleted, "batch endpoint and its deployments deleted", endpoint=name)
        return {"name": name, "deleted": True}

    # --- deployments ----------------------------------------------------------------------
    def batch_deployments(self, endpoint: str) -> list[dict[str, Any]]:
        self.ctx.store.get(BE, endpoint)
        return [d.to_dict() for d in self.ctx.store.list(BD, endpoint)]

    def batch_deployment(self, endpoint: str, name: str) -> dict[str, Any]:
        return self.ctx.store.get(BD, endpoint, name).to_dict()

    async def create_batch_deployment(self, spec: BatchDeployment, set_default: bool = False) -> dict[str, Any]:
        """Create only: an existing deployment is a Conflict (``update`` changes it)."""
        refuse_existing(self.ctx.store, BD, spec.endpoint_name, spec.name,
                        f"deployment {spec.name!r} of batch endpoint {spec.endpoint_name!r}")
        return await self.put_batch_deployment(spec.endpoint_name, spec.name, spec, set_default=set_default)

    async def put_batch_deployment(self, endpoint: str, name: str, spec: BatchDeployment,
                                   set_default: bool = False) -> dict[str, Any]:
        """Create or update, the model pinned to the version it resolves to now.  The endpoint's
        first deployment (or any, with ``set_default``) becomes its default."""
        ctx = self.ctx
        same_name(name, spec.name)
        same_name(endpoint, spec.endpoint_name, "endpoint_name")
        ep = ctx.store.get(BE, endpoint)
        existing = ctx.store.find(BD, endpoint, name)
        check_code(spec)
        resolved = await asyncio.to_thread(resolve_model, ctx.registry, spec.model)
        res = ctx.store.put(BD, endpoint, name, spec.to_dict(), "Succeeded", model_version=resolved.label)
        ctx.event(EventReason.DeploymentUpdated if existing else EventReason.DeploymentCreated,
                  f"model {spec.model} resolved to {resolved.label}; compute={spec.compute}",
                  endpoint=endpoint, deployment=name)
        defaults = ep.spec.get("defaults") or {}
        # The first deployment becomes the default, so `invoke` works without naming one.
        if set_default or not defaults.get("deployment_name"):
            ep.spec["defaults"] = {**defaults, "deployment_name": name}
            ctx.store.put(BE, endpoint, endpoint, ep.spec, "Succeeded")
            ctx.event(EventReason.DefaultDeploymentSet, f"default deployment is now {name!r}", endpoint=endpoint)
        return res.to_dict()

    async def delete_batch_deployment(self, endpoint: str, name: str) -> dict[str, Any]:
        """Delete a deployment without active jobs; the default goes last (or with no others left)."""
        ctx = self.ctx
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
        ctx.event(EventReason.DeploymentDeleted, "batch deployment deleted", endpoint=endpoint, deployment=name)
        return {"endpoint": endpoint, "name": name, "deleted": True}

    # --- jobs -----------------------------------------------------------------------------
    async def submit_job(self, endpoint: str, input: str, *, deployment_name: str | None = None,
                         output: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Invoke a batch endpoint: the named deployment or the endpoint's default scores ``input``
        (absolute paths or URLs).  Returns the job record; the batch service queues and runs it."""
        ctx = self.ctx
        ep = ctx.store.get(BE, endpoint).spec
        dep = deployment_name or (ep.get("defaults") or {}).get("deployment_name")
        if not dep:
            raise InvalidSpec(f"deployment_name: batch endpoint {endpoint!r} has no default deployment; "
                              "name one or set a default (batch-deployment create --set-default)")
        ctx.store.get(BD, endpoint, dep)
        settings = dict(overrides or {})
        if output:
            settings["output"] = output
        check_location("input", input)
        if "output" in settings:
            check_location("output", settings["output"])
        return await ctx.batch.submit(endpoint, dep, input, settings)

    def jobs(self, endpoint: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return [j for j in self.ctx.batch.jobs(endpoint) if state is None or j["state"] == state]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.ctx.batch.job(job_id)

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        self.ctx.store.get_job(job_id)
        return await self.ctx.batch.cancel(job_id)
