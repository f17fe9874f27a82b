"""In-process helpers for tests, the benchmark and notebooks: a HostContext without a host.

In production the host builds the context and the control plane writes the batch endpoint and
deployment records; these helpers do the same two things directly, so the batch service can be
exercised (and benchmarked) on its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..home import Home
from ..context import HostContext, HostSettings
from ..registry import Registry
from ..specs import BatchDeployment, BatchEndpoint
from ..store import Store
from .job import TERMINAL

__all__ = ["make_context", "register_batch_deployment", "wait_for_job"]


def make_context(home: Home) -> HostContext:
    home.ensure()
    return HostContext(home, Store(home.state_db), Registry(home), HostSettings())


def register_batch_deployment(
    ctx: HostContext, endpoint: str, deployment: str, model: str, *, default: bool = True, **settings: Any,
) -> BatchDeployment:
    """Write a batch endpoint (if new) and a deployment as the control plane does, model pinned."""
    ep = ctx.store.find("batch-endpoint", endpoint)
    ep_spec = BatchEndpoint(name=endpoint).to_dict() if ep is None else ep.spec
    if default:
        ep_spec = {**ep_spec, "defaults": {"deployment_name": deployment}}
    ctx.store.put("batch-endpoint", endpoint, endpoint, ep_spec, "Succeeded")
    dep = BatchDeployment(name=deployment, endpoint_name=endpoint, model=model, **settings)
    resolved = ctx.registry.resolve(model)
    ctx.store.put("batch-deployment", endpoint, deployment, dep.to_dict(), "Succeeded", model_version=resolved.label)
    return dep


async def wait_for_job(svc: Any, job_id: str, timeout: float = 120.0, states: tuple[str, ...] = TERMINAL) -> dict[str, Any]:
    """Poll the job until it reaches one of ``states``; TimeoutError naming the last state."""
    deadline = time.monotonic() + timeout
    while True:
        job = svc.job(job_id)
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['state']} after {timeout}s: {job['message']} {job['progress']}")
        await asyncio.sleep(0.2)
