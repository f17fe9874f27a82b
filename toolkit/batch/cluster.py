"""The Dask compute behind batch jobs: the host's local cluster, or a user's scheduler.

``compute: local`` runs on LocalClusters owned by the host (worker *processes*, each with
``max_concurrency_per_instance`` threads), adaptive between 0 and the workers reserved by the
running jobs: a job reserves ``instance_count`` workers when it starts and releases them when it
ends; with nothing reserved the adaptive maximum is 0 and the workers are retired once they
have been idle for ``idle_timeout`` seconds (Dask's ``wait_count`` x ``interval``).  Workers
differ by thread count and environment, so deployments that differ there get separate pools;
the host-wide ``capacity`` (workers) bounds them all, and a job that does not fit waits.

Local clusters speak TLS with a certificate the host makes at start, so only the host and its
workers connect (``cluster_access``); their dashboard is off unless the admin turns it on.

``compute: tcp://host:port`` connects a client to an existing scheduler; its workers and their
scaling belong to the user, so nothing is reserved there (and its security is the user's: the
client takes Dask's own configuration).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

from ..events import EventReason
from .cluster_access import DashboardSetting, dashboard_url, host_security, stop_dashboard

__all__ = [
    "Compute", "LocalPool", "RemotePool", "PoolKey", "worker_env", "warm_worker_factory", "prime_worker_factory",
    "WORKER_PRELOAD", "DASK_HOUSEKEEPING",
]

log = logging.getLogger("toolkit.batch")

EventSink = Callable[..., None]


def worker_env(threads: int, workers: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Native thread pools sized so ``workers x threads`` Python threads do not oversubscribe.

    Each of a worker's ``threads`` runs its own predict; BLAS/OpenMP and joblib inside each get
    what is left of the cores (at least 1).  A deployment's ``environment_variables`` win.
    """
    cores = os.cpu_count() or 1
    native = str(max(1, cores // max(1, workers * threads)))
    # LOKY_MAX_CPU_COUNT is the core count joblib reports, so a model with n_jobs=-1 (a forest)
    # runs one thread per core left to it instead of every core in every worker.
    env = {k: native for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "LOKY_MAX_CPU_COUNT")}
    env.update(extra or {})
    return env


# What a worker imports before it can score an MLflow model.  Spawned cold, a worker spends
# ~4.5 s importing these (measured, two workers starting at once on 2 cores), which was most of
# a batch job's cold start; forked from a server process that already imported them, it starts
# in ~0.1 s.  Modules missing here are skipped by the fork server.
WORKER_PRELOAD = (
    "distributed", "numpy", "pandas", "pyarrow", "pyarrow.parquet", "pyarrow.csv", "sklearn.ensemble",
    "sklearn.linear_model", "mlflow", "mlflow.pyfunc", "mlflow.sklearn", "skops.io", "toolkit.batch.task",
)


def warm_worker_factory(preload: tuple[str, ...] = WORKER_PRELOAD) -> bool:
    """Make local workers fork from a warm server process (``forkserver``) instead of spawning.

    Call once in the process that will own LocalClusters, before the first one starts.  The
    fork server starts now and imports ``preload`` in the background (a fork request waits for
    it, so an early job is only as slow as before).  ``ENDPOINTS_BATCH_FORKSERVER=0`` keeps
    Dask's default (spawn).  Returns whether the fork server is in use.
    """
    if os.environ.get("ENDPOINTS_BATCH_FORKSERVER", "1") == "0" or sys.platform != "linux":
        return False
    import multiprocessing.forkserver

    import dask
    from distributed.utils import get_mp_context

    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    get_mp_context().set_forkserver_preload(list(preload))  # replaces Dask's shorter list
    multiprocessing.forkserver.ensure_running()
    return True


def _noop() -> None:
    pass


def prime_worker_factory(timeout: float = 300.0) -> float:
    """Block until the fork server has imported its preload; returns the seconds waited.

    Forks one no-op child: the fork server answers only once its imports are done.
    """
    import multiprocessing

    started = time.perf_counter()
    proc = multiprocessing.get_context("forkserver").Process(target=_noop, name="endpoints-prime")
    proc.start()
    proc.join(timeout)
    return time.perf_counter() - started


# Dask's housekeeping, made less frequent for the host's local clusters.  By default every Dask
# server (the scheduler in the host, each worker) samples its event loop's stack every 10 ms for
# the dashboard's profiler, checks loop latency every 20 ms, reads system counters every 500 ms
# and each worker's memory every 100 ms.  Measured idle here: 14% of one core across the host
# and two workers, 1.7% with these settings; under a job that CPU is taken from the mini-batches.
# The dashboard is off by default (and its profile view is the only user of the profiler), and a
# 500 ms memory check still stops a runaway worker.
DASK_HOUSEKEEPING: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


def _nanny_class() -> type:
    from distributed import Nanny

    class _Nanny(Nanny):
        """A Nanny that leaves the host's environment alone.

        Dask applies its ``pre-spawn-environ`` to the *parent's* ``os.environ`` before starting
        a worker; in the host that would leak into every process the host starts later (online
        instances).  The thread variables reach the worker through ``env`` instead.  Dask's
        ``MALLOC_TRIM_THRESHOLD_=65536`` is dropped on purpose: it turns off glibc's adaptive
        mmap threshold, so every large temporary array of a predict (a forest allocates one per
        tree) is mmapped, page-faulted and unmapped again; measured, that made mini-batches ~8%
        slower.  A worker's memory then stays near its largest mini-batch, which it reuses.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pre_spawn_env = {}

    return _Nanny


@dataclass(frozen=True)
class PoolKey:
    threads: int
    env: tuple[tuple[str, str], ...]

    def label(self) -> str:
        return f"threads={self.threads}" + (f" env={dict(self.env)}" if self.env else "")


@dataclass
class LocalPool:
    key: PoolKey
    cluster: Any
    client: Any
    reserved: int = 0
    last_workers: int = 0
    local: bool = True

    @property
    def address(self) -> str:
        return str(self.cluster.scheduler_address)

    @property
    def dashboard(self) -> str | None:
        return dashboard_url(self.cluster.scheduler)

    def workers(self) -> list[dict[str, Any]]:
        # The scheduler lives in this process: read its state directly (no round trip).
        sched = self.cluster.scheduler
        return [
            {"address": ws.address, "pid": ws.pid, "nthreads": ws.nthreads, "processing": len(ws.processing)}
            for ws in list(sched.workers.values())
        ]

    def set_maximum(self, n: int) -> None:
        self.cluster._adaptive.maximum = n

    async def close(self) -> None:
        try:
            await self.client.close()
        finally:
            await self.cluster.close()


@dataclass
class RemotePool:
    address: str
    client: Any
    local: bool = False
    last_workers: int = 0

    def workers(self) -> list[dict[str, Any]]:
        info = self.client.scheduler_info() or {}
        return [
            {"address": a, "pid": w.get("pid"), "nthreads": w.get("nthreads"), "processing": None}
            for a, w in (info.get("workers") or {}).items()
        ]

    async def close(self) -> None:
        await self.client.close()


@dataclass
class Compute:
    """Pools by key, host-wide worker capacity, and the scale events."""

    capacity: int
    idle_timeout: float = 60.0
    interval: float = 1.0
    event: EventSink | None = None
    dashboard: DashboardSetting = field(default_factory=DashboardSetting)
    pools: dict[PoolKey, LocalPool] = field(default_factory=dict)
    remotes: dict[str, RemotePool] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # Workers promised to started jobs; booked when the service starts a job (synchronously, so
    # two jobs dispatched in one go cannot both take the last worker), unbooked when it ends.
    booked: int = 0
    # The host's TLS identity for its local clusters, made with the first pool (see cluster_access).
    _security: Any = field(default=None, repr=False)

    @property
    def reserved(self) -> int:
        return sum(p.reserved for p in self.pools.values())

    def fits(self, workers: int) -> bool:
        return self.booked + workers <= self.capacity

    def book(self, workers: int) -> None:
        self.booked += workers

    def unbook(self, workers: int) -> None:
        self.booked = max(0, self.booked - workers)

    async def acquire(self, threads: int, workers: int, env: dict[str, str]) -> LocalPool:
        """Reserve ``workers`` workers of the pool with this thread count and environment."""
        key = PoolKey(threads, tuple(sorted(env.items())))
        async with self._lock:
            pool = self.pools.get(key)
            if pool is None:
                pool = self.pools[key] = await self._start_pool(key)
            pool.reserved += workers
            pool.set_maximum(pool.reserved)
            # Start the workers now instead of at Adaptive's next look at the task queue: their
            # start (a Python process importing the model's libraries) overlaps the planning
            # and model fetching.  Adaptive keeps them while there is work and retires them
            # after idle_timeout as usual.
            if len(pool.cluster.worker_spec) < pool.reserved:
                pool.cluster.scale(pool.reserved)
        return pool

    def release(self, pool: LocalPool, workers: int) -> None:
        pool.reserved = max(0, pool.reserved - workers)
        # Adaptive retires the now-unneeded workers after idle_timeout (its wait_count).
        pool.set_maximum(pool.reserved)

    async def _start_pool(self, key: PoolKey) -> LocalPool:
        import dask
        from distributed import Client, LocalCluster

        # Set for the whole process, not in a `with`: workers started later by Adaptive take
        # their configuration from the host's at that time.
        dask.config.set(DASK_HOUSEKEEPING)

        # The scheduler runs inside the host: its per-connection INFO lines are noise there.
        for name in ("distributed.core", "distributed.scheduler", "distributed.nanny", "distributed.deploy"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if self._security is None:
            self._security = await asyncio.to_thread(host_security)
        memory = psutil.virtual_memory().total // max(1, self.capacity)
        # Dask's scheduler starts its HTTP server whatever dashboard_address says (None means
        # port 8787 on every interface it listens on), so it is bound to a loopback port and,
        # unless the admin turned the dashboard on, closed right after the start.
        first_dashboard = not any(p.dashboard for p in self.pools.values())
        cluster = await LocalCluster(
            n_workers=0, threads_per_worker=key.threads, processes=True, asynchronous=True,
            host="127.0.0.1", dashboard_address=self.dashboard.address(first_dashboard),
            worker_class=_nanny_class(), env=dict(key.env), memory_limit=memory, silence_logs=logging.WARNING,
            security=self._security,
        )
        if not self.dashboard.enabled:
            stop_dashboard(cluster.scheduler)
        # target_duration is tiny on purpose: any queued mini-batch asks for every reserved
        # worker (a batch job wants its instance_count now, not a share sized by past speed).
        cluster.adapt(
            minimum=0, maximum=0, interval=f"{self.interval}s", target_duration="10ms",
            wait_count=max(1, math.ceil(self.idle_timeout / self.interval)),
        )
        client = await Client(cluster, asynchronous=True)
        pool = LocalPool(key, cluster, client)
        log.info("batch: started local cluster %s (%s, TLS; dashboard %s)", pool.address, key.label(),
                 pool.dashboard or "off")
        return pool

    async def remote(self, address: str) -> RemotePool:
        from distributed import Client

        async with self._lock:
            pool = self.remotes.get(address)
            if pool is None:
                client = await Client(address, asynchronous=True, timeout="10s")
                pool = self.remotes[address] = RemotePool(address, client)
        return pool

    def poll(self) -> None:
        """Record ClusterScaled when a pool's worker count changed since the last poll."""
        for pool in [*self.pools.values(), *self.remotes.values()]:
            n = len(pool.workers())
            if n != pool.last_workers:
                where = pool.key.label() if isinstance(pool, LocalPool) else pool.address
                if self.event:
                    self.event(EventReason.ClusterScaled, f"{'local' if pool.local else 'remote'} cluster ({where}): {pool.last_workers} -> {n} workers")
                pool.last_workers = n

    def info(self) -> dict[str, Any]:
        pools = []
        for p in self.pools.values():
            ws = p.workers()
            pools.append({
                "scheduler": p.address, "dashboard": p.dashboard, "threads_per_worker": p.key.threads, "environment": dict(p.key.env),
                "reserved": p.reserved, "workers": len(ws), "pids": [w["pid"] for w in ws], "worker_list": ws,
            })
        remotes = []
        for r in self.remotes.values():
            ws = r.workers()
            remotes.append({"scheduler": r.address, "workers": len(ws), "worker_list": ws})
        return {
            "local": {
                "up": bool(self.pools), "capacity": self.capacity, "booked": self.booked,
                "workers": sum(p["workers"] for p in pools),
                "threads": sum(p["workers"] * p["threads_per_worker"] for p in pools),
                "idle_timeout_s": self.idle_timeout, "pools": pools,
                # Who may connect: only holders of the host's certificate (mutual TLS).
                "security": "tls",
                "dashboard": {
                    "enabled": self.dashboard.enabled, "setting": self.dashboard.describe(),
                    "urls": [p["dashboard"] for p in pools if p["dashboard"]],
                },
            },
            "remote": remotes,
        }

    async def close(self) -> None:
        for pool in [*self.pools.values(), *self.remotes.values()]:
            try:
                await pool.close()
            except Exception as err:  # closing must go on for the others
                log.warning("batch: closing %s failed: %s", getattr(pool, "address", pool), err)
        self.pools.clear()
        self.remotes.clear()
