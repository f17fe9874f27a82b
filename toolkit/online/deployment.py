"""The deployment and its instances as the host sees them: states, settings, slots, waiters.

A :class:`Deployment` holds the routed instances, the per-instance in-flight slots and the FIFO
of requests waiting for a slot (the gateway's bounded queue).  A :class:`Generation` is one
version of its spec (an update starts a new generation beside the old one, then switches).
The processes behind the instances are run by :mod:`.supervisor`.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ..specs import OnlineDeployment
from .resources import MIB, Compute
from .stats import DeploymentStats
from .upstream import Upstream

__all__ = [
    "Instance", "Deployment", "Settings", "Generation",
    "STARTING", "READY", "NOT_READY", "DRAINING", "RESTARTING", "STOPPED", "FAILED", "LOAD_FAILED_MARK",
]

STARTING, READY, NOT_READY, DRAINING, RESTARTING, STOPPED, FAILED = (
    "Starting", "Ready", "NotReady", "Draining", "Restarting", "Stopped", "Failed",
)
LOAD_FAILED_MARK = "MODEL_LOAD_FAILED:"


@dataclass(frozen=True)
class Settings:
    """Request settings of a deployment, in the units the gateway uses."""

    max_concurrent: int
    queue_wait_s: float
    timeout_s: float
    max_body: int

    @classmethod
    def of(cls, spec: OnlineDeployment) -> "Settings":
        rs = spec.request_settings
        return cls(
            max_concurrent=rs.max_concurrent_requests_per_instance, queue_wait_s=rs.max_queue_wait_ms / 1000.0,
            timeout_s=rs.request_timeout_ms / 1000.0, max_body=rs.max_body_bytes,
        )


@dataclass(frozen=True)
class Generation:
    """What a set of instances runs: one version of the deployment spec and its resolved model.
    An update starts instances of a new generation beside the old ones, so an old instance
    that restarts mid-update still comes back with the old model and settings."""

    spec: OnlineDeployment
    compute: Compute
    model_uri: str
    model_path: str

    @property
    def settings(self) -> Settings:
        return Settings.of(self.spec)


class Instance:
    """One instance process slot; survives restarts of its process."""

    def __init__(self, dep: "Deployment", gen: Generation, instance_id: str, sock: Path, log: Path,
                 cpus: list[int]) -> None:
        self.dep = dep
        self.gen = gen
        self.id = instance_id
        self.sock = sock
        self.log = log
        self.cpus = cpus
        self.state = STARTING
        self.restarts = 0
        self.pid: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.upstream: Upstream | None = None
        self.inflight = 0
        self.started_at: float | None = None      # wall clock, for show
        self.ready_at: float | None = None
        self.exit_code: int | None = None
        self.load_error: str | None = None
        self.kill_reason: str | None = None
        self.stopping = False
        self.suspect = False                      # a connection to it failed; out of routing until a probe passes
        self.cpu_percent = 0.0
        self.rss = 0
        self.task: asyncio.Task[None] | None = None
        self.ever_ready = asyncio.Event()
        self.settled = asyncio.Event()            # ready once, or failed for good
        self._exited = asyncio.Event()
        self._log_offset = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self._exited.is_set()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "pid": self.pid, "state": self.state, "restarts": self.restarts,
            "rss_mib": round(self.rss / MIB, 1), "cpu_percent": round(self.cpu_percent, 1),
            "started_at": self.started_at, "ready_at": self.ready_at, "in_flight": self.inflight,
            "cpus": self.cpus, "exit_code": self.exit_code, "log": str(self.log),
            **({"message": self.load_error} if self.load_error else {}),
        }


class Deployment:
    """The live side of one online deployment: instances, slots, waiters, stats."""

    def __init__(self, endpoint: str, name: str, gen: Generation) -> None:
        self.endpoint = endpoint
        self.name = name
        self.gen = gen
        self.settings = gen.settings
        self.instances: list[Instance] = []     # routed (the current generation)
        self.retired: list[Instance] = []       # draining or being stopped
        self.pending: list[Instance] = []       # next generation, starting during an update
        self.ready: list[Instance] = []         # the routed instances that are Ready
        self.waiters: deque[asyncio.Future[Instance | None]] = deque()
        self.admitted = 0                       # requests queued or in flight (Azure's 429 rule)
        self.stats = DeploymentStats()
        self.failed: str | None = None          # the message that made the deployment Failed
        self.lock = asyncio.Lock()              # one structural change (deploy/scale/stop) at a time
        self.target = gen.spec.instance_count   # instance count the autoscaler or the spec asks for
        self.cold_start: asyncio.Task[Any] | None = None
        self.closed = False
        self._next_index = 0

    # --- slots (hot path: no awaits, no allocation beyond the loop) ------------------------
    def refresh(self) -> None:
        self.ready = [i for i in self.instances if i.state == READY and not i.suspect]
        if self.ready and self.waiters:
            self.wake()

    def try_acquire(self, exclude: Instance | None = None) -> Instance | None:
        best: Instance | None = None
        limit = self.settings.max_concurrent
        for inst in self.ready:
            if inst.inflight < limit and inst is not exclude and (best is None or inst.inflight < best.inflight):
                best = inst
        if best is not None:
            best.inflight += 1
        return best

    def release(self, inst: Instance) -> None:
        inst.inflight -= 1
        if self.waiters:
            self.wake()

    def wake(self) -> None:
        """Hand free slots to waiters in arrival order."""
        while self.waiters:
            fut = self.waiters[0]
            if fut.done():
                self.waiters.popleft()
                continue
            inst = self.try_acquire()
            if inst is None:
                return
            self.waiters.popleft()
            fut.set_result(inst)

    def reroute_waiters(self) -> None:
        """Wake every waiter with None: "look again" (the routed set changed, or it is gone)."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def spec(self) -> OnlineDeployment:
        return self.gen.spec

    def switch(self, gen: Generation, instances: list[Instance]) -> list[Instance]:
        """Route to ``instances`` (of ``gen``) from now on; return the instances they replace."""
        old = self.instances
        self.gen, self.settings, self.instances = gen, gen.settings, instances
        self.pending = [i for i in self.pending if i not in instances]
        self.retired.extend(old)
        self.refresh()
        return old

    def all_instances(self) -> list[Instance]:
        return [*self.instances, *self.pending, *self.retired]

    def next_index(self) -> int:
        used = {i.id for i in self.all_instances()}
        while f"{self.name}-{self._next_index}" in used:
            self._next_index += 1
        n = self._next_index
        self._next_index += 1
        return n
