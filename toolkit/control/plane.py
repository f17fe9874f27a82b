"""The control plane's core: every rule that spans resources, apart from HTTP.

The FastAPI routes of ``toolkit/host/control.py`` parse a request, call one method here and
return its answer (as KServe's ``V2Endpoints`` sits over its ``DataPlane``); tests and in-process
tools call the same methods, so the rules exist once.  Methods that change something are
coroutines: they write the store, then await the online service's hook (which returns at once).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from .. import __version__
from ..context import HostContext
from .batch import BatchControl
from .online import OnlineControl
from .rules import BD, BE, OD, OE

__all__ = ["ControlPlane"]


class ControlPlane(OnlineControl, BatchControl):
    """Typed operations on online and batch endpoints, deployments, jobs and models.

    Built over a :class:`HostContext` whose online and batch services are both present (the
    host always builds both); the batch resource methods use only the store and the registry,
    so in-process tools may build one over a context without services to register batch
    deployments.
    """

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx

    # --- host -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Host URL, pid, uptime, what it holds, job counts by state and the local cluster."""
        ctx = self.ctx
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
        try:
            out["cluster"] = ctx.batch.cluster_info()
        except Exception as err:  # the status must answer even when the cluster cannot
            out["cluster"] = {"error": str(err)}
        return out

    # --- models ---------------------------------------------------------------------------
    async def models(self) -> list[dict[str, Any]]:
        """Registered models with versions, aliases and signatures (the registry is read in a thread)."""
        return [m.to_dict() for m in await asyncio.to_thread(self.ctx.registry.list_models)]

    async def model(self, name: str) -> dict[str, Any]:
        return (await asyncio.to_thread(self.ctx.registry.get_model, name)).to_dict()

    # --- advisor --------------------------------------------------------------------------
    async def advise(self, workload: dict[str, Any]) -> dict[str, Any]:
        """Recommend online or batch for a workload (docs/advisor.md); profiles the model in a thread."""
        from ..advisor import advise as run_advice  # heavy (profiling): imported when first asked

        advice = await asyncio.to_thread(run_advice, self.ctx.registry, workload)
        return advice.to_dict()
