"""In-process helpers for tests, the benchmark and notebooks: a HostContext without a host.

In production the host builds the context and its control plane writes the batch endpoint and
deployment records; these helpers go through the same :class:`~toolkit.control.ControlPlane`
methods, so the batch service can be exercised (and benchmarked) on its own under the same rules.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..control import ControlPlane
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
    """Create the batch endpoint (if new) and create or update the deployment, model pinned,
    through the control plane.  ``default=False`` leaves the endpoint's default as it was (none,
    for a new endpoint).  Callable with or without a running event loop (the benchmark calls it
    from one): the control plane's coroutines then run on a loop of their own in a thread."""
    dep = BatchDeployment(name=deployment, endpoint_name=endpoint, model=model, **settings)

    async def register() -> None:
        plane = ControlPlane(ctx)
        previous = ctx.store.find("batch-endpoint", endpoint)
        if previous is None:
            await plane.create_batch_endpoint(BatchEndpoint(name=endpoint))
        await plane.put_batch_deployment(endpoint, deployment, dep, set_default=default)
        before = None if previous is None else (previous.spec.get("defaults") or {}).get("deployment_name")
        if not default and ctx.store.get("batch-endpoint", endpoint).spec["defaults"]["deployment_name"] != before:
            # The control plane makes a first deployment the default; this caller asked it not to.
            await plane.put_batch_endpoint(endpoint, BatchEndpoint(name=endpoint, defaults={"deployment_name": before}))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(register())
    else:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, register()).result()
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
