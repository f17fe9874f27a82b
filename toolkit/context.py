"""The service context: the seams between the host and the capabilities that live in it.

The host process owns a :class:`HostContext`; the online service (gateway + supervisor) and the
batch service (Dask job runner) are built from it, started in the host's lifespan and told about
spec changes by the control plane.  The control plane has already validated the spec, resolved
the model and written the store before it calls a hook; hooks return quickly and do slow work
(starting processes, loading models) in background tasks, recording progress as provisioning
states and events in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from .home import Home
from .registry import Registry
from .store import Store

if TYPE_CHECKING:  # only for annotations: the context must not pull the web stack into the SDK
    from starlette.routing import BaseRoute

__all__ = ["HostContext", "HostSettings", "OnlineServiceProtocol", "BatchServiceProtocol"]

log = logging.getLogger("toolkit.host")


@dataclass
class HostSettings:
    host: str = "127.0.0.1"
    port: int = 5080
    started_at: float = 0.0

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")


@dataclass
class HostContext:
    home: Home
    store: Store
    registry: Registry
    settings: HostSettings
    online: "OnlineServiceProtocol" = field(default=None)  # type: ignore[assignment]
    batch: "BatchServiceProtocol" = field(default=None)  # type: ignore[assignment]

    def event(
        self, reason: str, message: str, *, level: str = "info", endpoint: str | None = None,
        deployment: str | None = None, job: str | None = None,
    ) -> None:
        """Record an event (shown by ``show``, the widgets and the TUI) and log it."""
        self.store.add_event(reason, message, level=level, endpoint=endpoint, deployment=deployment, job=job)
        scope = "/".join(x for x in (endpoint, deployment, job) if x)
        getattr(log, level if level in ("debug", "info", "warning", "error") else "info")(
            "%s %s: %s", scope, reason, message
        )


class OnlineServiceProtocol(Protocol):
    async def start(self) -> None:
        """Bring back every stored deployment (host restart)."""

    async def stop(self) -> None:
        """Stop every instance process."""

    async def deploy(self, endpoint: str, name: str) -> None:
        """The stored deployment is new or changed (state Creating/Updating): (re)start it."""

    async def undeploy(self, endpoint: str, name: str) -> None:
        """Stop the deployment's instances; the control plane then deletes its record."""

    async def endpoint_changed(self, endpoint: str) -> None:
        """Traffic, mirror or auth mode changed, or the endpoint is new."""

    async def endpoint_deleted(self, endpoint: str) -> None:
        """Stop everything under the endpoint."""

    def routes(self) -> list[BaseRoute]:
        """Data-plane routes (/endpoints/..., /v2/..., /metrics), except the scoring routes."""

    def scoring_app(self, path: str) -> Callable[[Any, Any, Any], Awaitable[None]] | None:
        """The raw ASGI handler of a scoring path (served before any routing), or None."""

    def describe(self, endpoint: str, name: str) -> dict[str, Any]:
        """Live view of a deployment for ``show``: instances, their states, pids, ports."""

    def logs(self, endpoint: str, name: str, lines: int) -> str:
        """The last lines of the deployment's instance logs."""

    def stats_history(self, endpoint: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Per deployment: ``{endpoint, deployment, buckets}``, 10-second buckets of the last 15 minutes."""

    def log_files(self, endpoint: str, name: str) -> list[tuple[str, Any, Any]]:
        """(instance id, log path, live instance or None) of the deployment's logs, oldest first."""

    def stats(self, endpoint: str | None = None) -> dict[str, Any]:
        """Per-deployment rps, p50/p95/p99 over a sliding window, errors, served/mirrored."""


class BatchServiceProtocol(Protocol):
    async def start(self) -> None:
        """Resume jobs left Queued/Running/Finalizing by a previous host."""

    async def stop(self) -> None:
        """Stop the runner and the local cluster (jobs stay resumable)."""

    async def submit(self, endpoint: str, deployment: str, inputs: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """Persist a job and queue it; return the job record."""

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Request cancellation; return the job record."""

    def job(self, job_id: str) -> dict[str, Any]:
        """The job record with progress."""

    def cluster_info(self) -> dict[str, Any]:
        """Workers, threads and whether the local cluster is up."""
