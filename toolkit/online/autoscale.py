"""Target-utilisation autoscaling and scale to zero (``scale_settings.type: target_utilization``).

Every ``polling_interval`` the autoscaler measures, per deployment,

* CPU utilisation: mean CPU of its instances over their instance type's cores (100% = every
  core of every instance busy), sampled by the supervisor's monitor, and
* concurrency utilisation: mean requests in flight per instance (busy seconds / elapsed
  seconds, Little's law, so a burst between two polls is not missed) over
  ``max_concurrent_requests_per_instance``,

takes the larger, and asks for ``ceil(instances * utilisation / target)`` instances within
``[max(min_instances, 1), max_instances]``.  Up happens at once (load is waiting); down only
after the desired count stayed lower for ``scale_down_delay`` seconds, so a pause between
bursts does not flap.  With ``min_instances: 0`` a deployment without requests for
``idle_timeout`` seconds goes to zero, and the next request starts one (the gateway waits for it).
Every decision is an event (ScaledUp / ScaledDown) with its numbers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from ..events import EventReason
from .deployment import Deployment

__all__ = ["Autoscaler", "Decision", "decide"]

log = logging.getLogger("toolkit.online")
_TICK_S = 0.25


@dataclass
class Decision:
    desired: int
    utilization: float
    cpu: float
    concurrency: float


def decide(current: int, cpu_util: float, conc_util: float, target: int, lo: int, hi: int) -> Decision:
    util = max(cpu_util, conc_util)
    desired = math.ceil(current * util / target) if current else lo
    desired = max(lo, min(hi, desired))
    return Decision(desired, util, cpu_util, conc_util)


@dataclass
class _Track:
    last_t: float
    last_busy: float
    low_since: float | None = None


# What the autoscaler may do to a deployment: set its instance count, with the event's reason and words.
ScaleTo = Callable[[Deployment, int, EventReason, str], Awaitable[Any]]


class Autoscaler:
    """Decides instance counts; the owner (the online service) is never seen, only what it hands in:
    the live deployments by (endpoint, name) and the callable that scales one."""

    def __init__(self, deployments: Mapping[tuple[str, str], Deployment], scale_to: ScaleTo) -> None:
        self.deployments = deployments
        self.scale_to = scale_to
        self._task: asyncio.Task[None] | None = None
        self._tracks: dict[tuple[str, str], _Track] = {}

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="autoscaler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            for key, dep in list(self.deployments.items()):
                try:
                    await self.tick(dep)
                except Exception:  # one deployment's trouble must not stop scaling the others
                    log.exception("autoscaler failed for %s/%s", *key)

    async def tick(self, dep: Deployment, now: float | None = None) -> None:
        s = dep.spec.scale_settings
        key = (dep.endpoint, dep.name)
        if s.type != "target_utilization":
            self._tracks.pop(key, None)
            return
        if dep.failed or dep.closed or dep.lock.locked() or dep.pending:
            return  # an update or a failure owns the instance set right now
        now = time.monotonic() if now is None else now
        tr = self._tracks.get(key)
        if tr is None:
            self._tracks[key] = _Track(now, dep.stats.busy_s)
            return
        if now - tr.last_t < s.polling_interval:
            return
        current = len(dep.instances)
        elapsed = now - tr.last_t
        concurrency = (dep.stats.busy_s - tr.last_busy) / elapsed
        tr.last_t, tr.last_busy = now, dep.stats.busy_s
        if current == 0:
            return  # scaled to zero: the next request starts an instance (cold start)

        idle = now - dep.stats.last_request
        if s.min_instances == 0 and idle >= s.idle_timeout and dep.admitted == 0:
            await self.scale_to(dep, 0, EventReason.ScaledDown,
                                    f"from {current} to 0 instances: no request for {idle:.0f} s "
                                    f"(idle_timeout {s.idle_timeout} s)")
            tr.low_since = None
            return

        alive = [i for i in dep.instances if i.alive]
        cores = dep.gen.compute.cores
        cpu_util = (sum(i.cpu_percent for i in alive) / len(alive) / cores) if alive else 0.0
        conc_util = 100.0 * concurrency / (current * dep.settings.max_concurrent)
        d = decide(current, cpu_util, conc_util, s.target_utilization_percentage,
                   max(1, s.min_instances), s.max_instances)
        why = (f"utilization {d.utilization:.0f}% (cpu {d.cpu:.0f}%, concurrency {d.concurrency:.0f}%: "
               f"{concurrency:.2f} in flight per {current} instance(s)) vs target {s.target_utilization_percentage}%")
        if d.desired > current:
            tr.low_since = None
            await self.scale_to(dep, d.desired, EventReason.ScaledUp, f"from {current} to {d.desired} instances: {why}")
        elif d.desired < current:
            if tr.low_since is None:
                tr.low_since = now
            elif now - tr.low_since >= s.scale_down_delay:
                tr.low_since = None
                await self.scale_to(dep, d.desired, EventReason.ScaledDown,
                                        f"from {current} to {d.desired} instances: {why} for "
                                        f"{s.scale_down_delay} s (scale_down_delay)")
        else:
            tr.low_since = None
