"""Instance processes: spawn, probe, restart, stop, and watch their memory and CPU.

Each instance is its own OS process (``python -m toolkit.runtime.instance --uds S --config C``)
with its output in ``logs/<endpoint>/<deployment>/<instance>.log``.  The supervisor

* spawns it from the event-loop thread (PR_SET_PDEATHSIG fires when the *spawning thread* dies,
  so spawning from a short-lived worker thread would kill instances at random),
* probes ``/health/ready`` (gates traffic) and ``/health/live`` (restarts after
  ``failure_threshold`` consecutive failures) over the instance's Unix socket,
* restarts an instance that exits, with exponential back-off, unless its model failed to load
  (``MODEL_LOAD_FAILED: <message>`` as the last log line): restarting cannot fix that, so the
  instance is Failed and the deployment reports the loader's message,
* watches resident memory and CPU once per monitor interval; an instance over its instance
  type's memory is killed and restarted (``MemoryLimitExceeded``).

The deployments and instances it runs are described in :mod:`.deployment`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil

from ..errors import UpstreamError
from ..events import EventReason
from ..runtime.unix_socket import socket_dir
from ..specs import Probe
from .deployment import (
    DRAINING, FAILED, LOAD_FAILED_MARK, NOT_READY, READY, RESTARTING, STARTING, STOPPED, Deployment, Generation,
    Instance,
)
from .logtail import text_since
from .resources import MIB, CpuAllocator, make_preexec, thread_env, tree_rss
from .upstream import Upstream

__all__ = ["Supervisor", "load_failure"]

_BACKOFF_BASE_S = 1.0
_BACKOFF_MAX_S = 30.0
_STABLE_S = 60.0            # ready this long: the next crash starts the back-off from the base again
_STOP_GRACE_S = 5.0
_MAX_EARLY_EXITS = 3        # exits before the first ready: then the instance is Failed, not retried


EventFn = Callable[..., None]


def load_failure(text: str) -> str | None:
    """The loader's message if the instance reported MODEL_LOAD_FAILED."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(LOAD_FAILED_MARK):
            return line[len(LOAD_FAILED_MARK):].strip() or "the model failed to load"
    return None


class Supervisor:
    """Owns instance processes.  All methods run on the event loop thread."""

    def __init__(
        self, *, logs: Path, run_dir: Path, event: EventFn, command: list[str] | None = None,
        allocator: CpuAllocator | None = None, monitor_interval_s: float = 1.0,
        startup_timeout_s: float = 600.0, on_change: Callable[[Deployment], None] | None = None,
    ) -> None:
        self.logs = logs
        self.run_dir = run_dir
        self.event = event
        self.command = command or [sys.executable, "-m", "toolkit.runtime.instance"]
        self.allocator = allocator or CpuAllocator()
        self.monitor_interval_s = monitor_interval_s
        self.startup_timeout_s = startup_timeout_s
        self.on_change = on_change or (lambda dep: None)
        self.deployments: Callable[[], Iterable[Deployment]] = lambda: ()
        self._monitor: asyncio.Task[None] | None = None
        self._sock_dir: Path | None = None

    # --- paths ---------------------------------------------------------------------------
    def _sock_path(self, dep: Deployment, instance_id: str) -> Path:
        digest = hashlib.sha1(f"{dep.endpoint}/{dep.name}/{instance_id}".encode()).hexdigest()[:12]
        if self._sock_dir is None or not self._sock_dir.is_dir():
            # A folder only this user can enter (deep workspace folders, such as pytest's,
            # overflow sun_path and get a short private one in the temp dir instead).
            self._sock_dir = socket_dir(self.run_dir)
        return self._sock_dir / f"{digest}.sock"

    def new_instance(self, dep: Deployment, gen: Generation | None = None) -> Instance:
        gen = gen or dep.gen
        instance_id = f"{dep.name}-{dep.next_index()}"
        log = self.logs / dep.endpoint / dep.name / f"{instance_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return Instance(dep, gen, instance_id, self._sock_path(dep, instance_id), log,
                        self.allocator.allocate(gen.compute))

    # --- lifecycle -----------------------------------------------------------------------
    def launch(self, inst: Instance) -> None:
        """Start supervising ``inst`` (spawn now, restart on exit until stopped)."""
        inst.task = asyncio.get_running_loop().create_task(self._run(inst), name=f"instance {inst.id}")

    def _config(self, inst: Instance) -> Path:
        dep, gen = inst.dep, inst.gen
        spec = gen.spec
        rs = spec.request_settings
        cc = spec.code_configuration
        cfg = {
            "endpoint": dep.endpoint, "deployment": dep.name, "instance_id": inst.id,
            "model_path": gen.model_path, "model_uri": gen.model_uri,
            "code": cc.code if cc else None, "scoring_script": cc.scoring_script if cc else None,
            "batching": spec.batching.model_dump(),
            "request_timeout_ms": rs.request_timeout_ms,
            "max_concurrent_requests_per_instance": rs.max_concurrent_requests_per_instance,
            "max_body_bytes": rs.max_body_bytes,
        }
        path = inst.sock.with_suffix(".json")
        path.write_text(json.dumps(cfg))
        return path

    def _spawn(self, inst: Instance) -> None:
        gen = inst.gen
        cfg = self._config(inst)
        try:
            inst.sock.unlink()
        except FileNotFoundError:
            pass
        env = dict(os.environ)
        env.update(gen.spec.environment_variables)
        env.update(thread_env(gen.compute))
        env["PYTHONUNBUFFERED"] = "1"
        with open(inst.log, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- {stamp} starting {inst.id} (restart {inst.restarts}) cpus={inst.cpus}\n".encode())
            log.flush()
            inst._log_offset = log.tell()
            proc = subprocess.Popen(
                [*self.command, "--uds", str(inst.sock), "--config", str(cfg)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=make_preexec(inst.cpus), close_fds=True,
            )
        inst.proc, inst.pid = proc, proc.pid
        inst.started_at, inst.ready_at, inst.exit_code, inst.kill_reason = time.time(), None, None, None
        inst.rss, inst.cpu_percent, inst.suspect = 0, 0.0, False
        try:
            inst.ps = psutil.Process(proc.pid)
            inst.ps.cpu_percent(None)  # primes the interval
        except psutil.Error:
            inst.ps = None
        inst._exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        exited = inst._exited

        def wait() -> None:
            proc.wait()
            try:
                loop.call_soon_threadsafe(exited.set)
            except RuntimeError:  # loop closed: host shutting down
                pass

        threading.Thread(target=wait, name=f"wait-{inst.id}", daemon=True).start()
        # Connections to an instance are pooled for keep-alive; a new process needs a fresh pool.
        inst.upstream = Upstream(str(inst.sock), limit=gen.settings.max_concurrent + 8)

    async def _close_upstream(self, inst: Instance) -> None:
        if inst.upstream is not None:
            s, inst.upstream = inst.upstream, None
            await s.close()

    def _set_state(self, inst: Instance, state: str) -> None:
        if inst.state != state:
            inst.state = state
            inst.dep.refresh()
            self.on_change(inst.dep)

    async def _probe(self, inst: Instance, path: str, probe: Probe) -> bool:
        upstream = inst.upstream
        if upstream is None:
            return False
        try:
            async with asyncio.timeout(probe.timeout):
                return (await upstream.request("GET", path)).status == 200
        except (UpstreamError, OSError, TimeoutError):
            return False

    async def _run(self, inst: Instance) -> None:
        dep = inst.dep
        backoff = _BACKOFF_BASE_S
        early_exits = 0
        scope = {"endpoint": dep.endpoint, "deployment": dep.name}
        while not inst.stopping:
            self._spawn(inst)
            self._set_state(inst, STARTING)
            self.event(EventReason.InstanceStarted, f"{inst.id} started (pid {inst.pid}, cpus {inst.cpus})", **scope)
            try:
                await self._watch(inst)
            finally:
                if inst.alive:  # cancelled while running: do not leave an orphan
                    self._kill(inst, signal.SIGKILL)
                await self._close_upstream(inst)
            code = inst.proc.returncode if inst.proc else None
            inst.exit_code = code
            if inst.stopping:
                break
            text = text_since(inst.log, inst._log_offset)
            failure = load_failure(text) if inst.ready_at is None else None
            if failure is not None:
                inst.load_error = failure
                self._set_state(inst, FAILED)
                self.event(EventReason.ModelLoadFailed, f"{inst.id}: {failure}", level="error", **scope)
                inst.settled.set()
                return
            why = f" ({inst.kill_reason})" if inst.kill_reason else ""
            self.event(EventReason.InstanceExited, f"{inst.id} (pid {inst.pid}) exited with code {code}{why}",
                       level="warning", **scope)
            if not inst.ever_ready.is_set():
                early_exits += 1
                if early_exits >= _MAX_EARLY_EXITS:
                    # Never came up: a crash loop that back-off cannot fix (bad script, missing
                    # dependency).  Say so with the instance's own last words.
                    last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
                    inst.load_error = (f"instance exited {early_exits} times before becoming ready "
                                       f"(last exit code {code}){': ' + last.strip() if last else ''}")
                    self._set_state(inst, FAILED)
                    self.event(EventReason.InstanceFailed, f"{inst.id}: {inst.load_error}", level="error", **scope)
                    inst.settled.set()
                    return
            if inst.ready_at is not None and time.time() - inst.ready_at > _STABLE_S:
                backoff = _BACKOFF_BASE_S
            self._set_state(inst, RESTARTING)
            try:
                await asyncio.sleep(backoff)
            except asyncio.CancelledError:
                break
            backoff = min(_BACKOFF_MAX_S, backoff * 2)
            if inst.stopping:
                break
            inst.restarts += 1
            self.event(EventReason.InstanceRestarted, f"{inst.id} restart #{inst.restarts}", **scope)
        self._set_state(inst, STOPPED)
        inst.settled.set()

    async def _watch(self, inst: Instance) -> None:
        """Probe until the process exits (or is killed here for failing liveness)."""
        dep = inst.dep
        live, ready = inst.gen.spec.liveness_probe, inst.gen.spec.readiness_probe
        t0 = time.monotonic()
        next_live = t0 + live.initial_delay
        next_ready = t0 + ready.initial_delay
        startup_poll = 0.05
        live_fail = ready_fail = ready_ok = 0
        exited = inst._exited
        while not exited.is_set():
            now = time.monotonic()
            if now >= next_ready:
                ok = await self._probe(inst, "/health/ready", ready)
                if exited.is_set():
                    break
                if ok and inst.suspect:
                    inst.suspect = False
                    dep.refresh()
                if inst.state == STARTING:
                    # Poll fast while loading so a model is serving the moment it is ready.
                    ready_ok = ready_ok + 1 if ok else 0
                    if ready_ok >= ready.success_threshold:
                        inst.ready_at = time.time()
                        self._set_state(inst, READY)
                        inst.ever_ready.set()
                        inst.settled.set()
                        ready_fail = 0
                        self.event(EventReason.InstanceReady, f"{inst.id} is ready ({inst.ready_at - inst.started_at:.1f} s)"
                                   if inst.started_at else f"{inst.id} is ready",
                                   endpoint=dep.endpoint, deployment=dep.name)
                    elif now - t0 > self.startup_timeout_s:
                        inst.kill_reason = f"not ready within {self.startup_timeout_s:.0f} s"
                        self._kill(inst, signal.SIGKILL)
                    startup_poll = min(startup_poll * 1.5, float(ready.period))
                    next_ready = time.monotonic() + (startup_poll if inst.state == STARTING else ready.period)
                else:
                    if ok:
                        ready_fail, ready_ok = 0, ready_ok + 1
                        if inst.state == NOT_READY and ready_ok >= ready.success_threshold:
                            self._set_state(inst, READY)
                            self.event(EventReason.InstanceReady, f"{inst.id} is ready again",
                                       endpoint=dep.endpoint, deployment=dep.name)
                    else:
                        ready_ok, ready_fail = 0, ready_fail + 1
                        if inst.state == READY and ready_fail >= ready.failure_threshold:
                            self._set_state(inst, NOT_READY)
                            self.event(EventReason.InstanceNotReady, f"{inst.id} failed {ready_fail} readiness probes; "
                                       "no traffic until it passes again", level="warning",
                                       endpoint=dep.endpoint, deployment=dep.name)
                    next_ready = time.monotonic() + ready.period
            if now >= next_live:
                ok = await self._probe(inst, "/health/live", live)
                if exited.is_set():
                    break
                live_fail = 0 if ok else live_fail + 1
                if live_fail >= live.failure_threshold:
                    inst.kill_reason = f"failed {live_fail} liveness probes"
                    self.event(EventReason.LivenessProbeFailed, f"{inst.id} {inst.kill_reason}; restarting",
                               level="warning", endpoint=dep.endpoint, deployment=dep.name)
                    self._kill(inst, signal.SIGKILL)
                next_live = time.monotonic() + live.period
            delay = max(0.0, min(next_ready, next_live) - time.monotonic())
            try:
                async with asyncio.timeout(delay):
                    await exited.wait()
            except TimeoutError:
                pass

    def _kill(self, inst: Instance, sig: int) -> None:
        if inst.proc is not None and inst.proc.returncode is None:
            try:
                os.kill(inst.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, inst: Instance, reason: str) -> None:
        """Kill the process now; the run loop restarts it (a crash, as far as it knows)."""
        inst.kill_reason = reason
        self._kill(inst, signal.SIGKILL)

    async def stop(self, inst: Instance, grace_s: float = _STOP_GRACE_S) -> None:
        """Stop for good: SIGTERM, then SIGKILL after ``grace_s``."""
        inst.stopping = True
        if inst.alive:
            self._kill(inst, signal.SIGTERM)
            try:
                async with asyncio.timeout(grace_s):
                    await inst._exited.wait()
            except TimeoutError:
                self._kill(inst, signal.SIGKILL)
        if inst.task is not None and not inst.task.done():
            inst.task.cancel()
            try:
                await inst.task
            except (asyncio.CancelledError, Exception):
                pass
        if inst.state != FAILED:
            self._set_state(inst, STOPPED)
        await self._close_upstream(inst)
        for p in (inst.sock, inst.sock.with_suffix(".json")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    async def drain(self, inst: Instance, timeout_s: float) -> None:
        """Take ``inst`` out of routing, wait for its in-flight requests, then stop it."""
        if inst.state not in (FAILED, STOPPED):
            self._set_state(inst, DRAINING)
        deadline = time.monotonic() + timeout_s
        while inst.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.stop(inst)

    # --- monitor: memory and CPU ---------------------------------------------------------
    def start_monitor(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.get_running_loop().create_task(self._monitor_loop(), name="instance monitor")

    async def stop_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            try:
                await self._monitor
            except asyncio.CancelledError:
                pass
            self._monitor = None

    def _measure(self) -> list[tuple[Any, Any, float, int]]:
        """CPU and resident memory of every live instance (slow: walks /proc; run off the loop)."""
        out = []
        for dep in list(self.deployments()):
            for inst in list(dep.all_instances()):
                ps = inst.ps
                if ps is None or not inst.alive:
                    continue
                try:
                    out.append((dep, inst, ps.cpu_percent(None), tree_rss(ps)))
                except psutil.Error:
                    continue
        return out

    def sample(self, measured: list[tuple[Any, Any, float, int]] | None = None) -> None:
        for dep, inst, cpu, rss in self._measure() if measured is None else measured:
            inst.cpu_percent, inst.rss = cpu, rss
            limit = inst.gen.compute.memory_limit_bytes
            if inst.rss > limit and inst.kill_reason is None and inst.alive:
                msg = (f"{inst.id} uses {inst.rss / MIB:.0f} MiB, over the {limit / MIB:.0f} MiB of "
                       f"instance type {inst.gen.compute.instance_type}; restarting it")
                self.event(EventReason.MemoryLimitExceeded, msg, level="warning", endpoint=dep.endpoint, deployment=dep.name)
                self.kill(inst, "memory limit exceeded")

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.monitor_interval_s)
            try:
                # Measuring walks /proc (about 1 ms per instance): keep it off the request path.
                self.sample(await asyncio.to_thread(self._measure))
            except Exception:  # a monitor hiccup must never stop the watching
                import logging

                logging.getLogger("toolkit.online").exception("instance monitor failed")
