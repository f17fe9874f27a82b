"""Shadow traffic: a copy of a scored request sent to the endpoint's mirror deployment.

A mixin of :class:`.gateway.Gateway`.  A mirrored request never queues, never wakes a
scaled-to-zero deployment and never surfaces anywhere but the mirror's stats and metrics.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import UpstreamError
from .deployment import Deployment, Instance

if TYPE_CHECKING:
    from .backend import GatewayBackend
    from .upstream import UpstreamReply

__all__ = ["Mirroring", "TIMEOUT_GRACE_S"]

# The instance enforces request_timeout_ms itself and answers 408 with details; the gateway's
# deadline is a little later so the instance's answer normally wins and the gateway's own 408
# only catches an instance that hangs or is too overloaded to answer at all.
TIMEOUT_GRACE_S = 0.25


class Mirroring:
    if TYPE_CHECKING:
        svc: GatewayBackend
        metrics: Any
        _mirror_tasks: set[asyncio.Task[None]]

        async def _send(self, inst: Instance, method: str, path: str, body: bytes | None, content_type: str | None,
                        rid: str, extra: dict[str, str] | None = None) -> UpstreamReply: ...

    # --- mirroring -----------------------------------------------------------------------
    def _mirror(self, endpoint: str, name: str, path: str, body: bytes, ctype: str | None, rid: str,
                extra: dict[str, str] | None = None) -> None:
        mdep = self.svc.deployments.get((endpoint, name))
        if mdep is None:
            return
        inst = mdep.try_acquire()
        if inst is None:
            # Shadow traffic never queues and never wakes a scaled-to-zero deployment.
            mdep.stats.mirror_dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._mirror_send(mdep, inst, path, body, ctype, rid, extra))
        self._mirror_tasks.add(task)
        task.add_done_callback(self._mirror_tasks.discard)

    async def _mirror_send(self, mdep: Deployment, inst: Instance, path: str, body: bytes,
                           ctype: str | None, rid: str, extra: dict[str, str] | None = None) -> None:
        status = 599
        try:
            async with asyncio.timeout(mdep.settings.timeout_s + TIMEOUT_GRACE_S):
                status = (await self._send(inst, "POST", path, body, ctype, rid + "-mirror", extra)).status
        except (UpstreamError, OSError):
            status = 503
        except TimeoutError:
            status = 408
        except Exception:  # a shadow request must never surface anywhere but its metrics
            status = 500
        finally:
            mdep.release(inst)
        mdep.stats.mirrored += 1
        if status >= 400:
            mdep.stats.errors[status] = mdep.stats.errors.get(status, 0) + 1
        self.metrics.on_mirror(mdep.endpoint, mdep.name, status)

    async def close(self) -> None:
        for task in list(self._mirror_tasks):
            task.cancel()
        if self._mirror_tasks:
            await asyncio.gather(*self._mirror_tasks, return_exceptions=True)
