"""The batch service of the host: validates and persists jobs, queues them FIFO, runs them.

It lives on the host's asyncio loop.  Slow preparation (listing inputs, resolving and fetching
the model) runs in threads; Dask is driven with asynchronous clients on the same loop.  A job is
written to the store before anything else happens to it, so whatever happens to the host
afterwards, ``start()`` of the next host finds it and carries it on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..context import HostContext
from ..errors import Conflict, InvalidInput, InvalidSpec, NotFound
from ..events import EventReason
from ..registry import fetch_model, pinned_uri
from ..specs import BatchDeployment
from .cluster import Compute, prime_worker_factory, warm_worker_factory
from .cluster_access import DashboardSetting
from .inputs import expand_inputs, require_readable
from .job import (
    CANCEL_REQUESTED, CANCELED, NOT_STARTED, QUEUED, RESUMABLE, TERMINAL, JobPaths, effective_deployment, empty_progress, new_job_id,
)
from .output import write_json
from .runner import JobRunner, local_workers

__all__ = ["BatchService"]

log = logging.getLogger("toolkit.batch")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


class BatchService:
    """Implements :class:`toolkit.context.BatchServiceProtocol`.

    ``capacity``: local workers the host may run at once (default: the CPU count;
    ``ENDPOINTS_BATCH_WORKERS``).  ``idle_timeout``: seconds an idle local worker lives
    (default 60; ``ENDPOINTS_BATCH_IDLE_TIMEOUT``).  ``scale_interval``: seconds between
    adaptive scaling decisions (default 1).  ``dashboard``: the local clusters' Dask dashboard
    (default off; ``ENDPOINTS_BATCH_DASHBOARD``, see :class:`DashboardSetting`).
    """

    def __init__(
        self, ctx: HostContext, *, capacity: int | None = None, idle_timeout: float | None = None,
        scale_interval: float | None = None, dashboard: DashboardSetting | None = None,
    ) -> None:
        self.ctx = ctx
        cap = capacity or int(_env_float("ENDPOINTS_BATCH_WORKERS", os.cpu_count() or 1))
        idle = idle_timeout if idle_timeout is not None else _env_float("ENDPOINTS_BATCH_IDLE_TIMEOUT", 60.0)
        interval = scale_interval if scale_interval is not None else min(1.0, max(0.2, idle / 3))
        board = dashboard if dashboard is not None else DashboardSetting.from_env()
        if board.error:
            log.warning("batch: %s", board.error)
        self.compute = Compute(capacity=max(1, cap), idle_timeout=idle, interval=interval, event=self._cluster_event,
                               dashboard=board)
        self._queue: list[str] = []
        self._runners: dict[str, JobRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._started = False
        self._priming: asyncio.Future[float] | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume the jobs a previous host left unfinished, oldest first."""
        if self._started:
            return
        self._started = True
        if warm_worker_factory():
            # Import the workers' libraries now, off the event loop, not when the first job waits.
            self._priming = asyncio.get_running_loop().run_in_executor(None, prime_worker_factory)
            self._priming.add_done_callback(self._primed)
        for job in self.ctx.store.list_jobs(states=RESUMABLE):
            if job["state"] == CANCEL_REQUESTED:
                self.ctx.store.update_job(job["id"], state=CANCELED, message="canceled (host restarted)", ended_at=time.time())
                self._event(job, EventReason.JobCanceled, "cancel requested before the host restarted")
                continue
            self._queue.append(job["id"])
            if job["state"] != QUEUED:
                self.ctx.store.update_job(job["id"], state=QUEUED, message=f"requeued after a host restart (was {job['state']})")
            self._event(job, EventReason.JobQueued, f"requeued after a host restart (was {job['state']})")
        self._monitor = asyncio.create_task(self._watch(), name="batch-monitor")
        self._dispatch()

    @staticmethod
    def _primed(fut: "asyncio.Future[float]") -> None:
        if fut.cancelled() or fut.exception() is not None:
            log.warning("batch: the worker fork server did not start: %s", None if fut.cancelled() else fut.exception())
        else:
            log.info("batch: worker fork server ready in %.1f s (workers fork with their libraries imported)", fut.result())

    async def workers_warm(self) -> None:
        """Wait until new local workers start warm (the fork server has imported their libraries)."""
        if self._priming is not None:
            await asyncio.shield(self._priming)

    async def stop(self) -> None:
        """Stop runners (their jobs stay resumable) and close the clusters."""
        self._started = False  # no dispatching while runners wind down
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._monitor:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
        await self.compute.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.compute.interval)
            try:
                self.compute.poll()
            except Exception as err:  # the monitor must outlive a hiccup
                log.debug("batch monitor: %s", err)

    # --- jobs -----------------------------------------------------------------------------
    async def submit(self, endpoint: str, deployment: str | None, inputs: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
        job_id = await asyncio.to_thread(self._prepare, endpoint, deployment, inputs, dict(overrides or {}))
        job = self.ctx.store.get_job(job_id)
        self.ctx.store.update_job(job_id, state=QUEUED)
        self._queue.append(job_id)
        ahead = len(self._queue) - 1
        self._event(job, EventReason.JobQueued, f"input {inputs} ({job['spec']['files']} files)" + (f"; {ahead} job(s) ahead" if ahead else ""))
        self._dispatch()
        return self.job(job_id)

    def _prepare(self, endpoint: str, deployment: str | None, inputs: str, overrides: dict[str, Any]) -> str:
        """Validate, claim the folders and persist the job (NotStarted).  Runs in a thread."""
        store = self.ctx.store
        ep = store.get("batch-endpoint", endpoint)
        name = deployment or (ep.spec.get("defaults") or {}).get("deployment_name")
        if not name:
            raise InvalidSpec(
                f"batch endpoint {endpoint!r} has no default deployment: set defaults.deployment_name "
                f"(batch-deployment create --set-default) or pass a deployment name"
            )
        res = store.get("batch-deployment", endpoint, name)
        dep = effective_deployment(res.spec, overrides)
        script = None
        if dep.code_configuration:
            path = dep.code_configuration.script_path().expanduser().resolve()
            if not path.is_file():
                raise InvalidSpec(f"code_configuration: scoring script {str(path)!r} does not exist")
            script = str(path)
        files = expand_inputs(inputs)
        if script is None:  # a scoring script may read any file type; the built-in reader cannot
            require_readable(files, inputs)
        model = self._model_of(res.spec["model"], res.model_version)

        job_id = new_job_id(endpoint)
        while self._exists(job_id):
            job_id = new_job_id(endpoint)
        job_dir = self.ctx.home.jobs / job_id
        out = overrides.get("output")
        if out and "://" in str(out):
            raise InvalidInput(f"output {out!r}: the output must be a local folder")
        try:
            output_dir = Path(str(out)).expanduser().resolve() if out else job_dir
        except (RuntimeError, ValueError, OSError) as err:  # "~nobody/x", a NUL byte, a symlink loop
            raise InvalidInput(f"output {out!r} is not a usable folder path ({err})") from None
        if output_dir != job_dir:
            try:
                # mkdir without exist_ok claims the folder atomically: never reuse, never overwrite.
                output_dir.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                raise Conflict(f"output folder {str(output_dir)!r} already exists; choose a new folder") from None
            except OSError as err:
                raise InvalidInput(f"output folder {str(output_dir)!r} cannot be created: {err.strerror or err}") from None
        try:
            job_dir.mkdir(parents=True, exist_ok=False)
            paths = JobPaths(job_dir, output_dir)
            write_json(paths.files, files)
            spec = {
                "input": inputs, "overrides": overrides, "files": len(files), "deployment": dep.to_dict(),
                "model": model, "script": script, "job_dir": str(job_dir), "compute": dep.compute,
            }
            store.add_job(job_id, endpoint, name, NOT_STARTED, spec, str(output_dir))
            store.update_job(job_id, progress=empty_progress())
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            if output_dir != job_dir:
                shutil.rmtree(output_dir, ignore_errors=True)
            raise
        return job_id

    def _exists(self, job_id: str) -> bool:
        try:
            self.ctx.store.get_job(job_id)
            return True
        except NotFound:
            return (self.ctx.home.jobs / job_id).exists()

    def _model_of(self, requested: str, model_version: str | None) -> dict[str, Any]:
        """The model pinned by the control plane (``name:version``), else resolved now."""
        if model_version and ":" in model_version and requested.startswith("models:/"):
            return {"requested": requested, "uri": pinned_uri(requested, model_version), "version": model_version}
        resolved = self.ctx.registry.resolve(requested)
        return {"requested": requested, "uri": resolved.uri, "version": resolved.label}

    def model_path(self, model: dict[str, Any]) -> str:
        """A local folder holding the model: fetched once into the home's cache and reused."""
        self.ctx.home.configure_mlflow()
        return fetch_model(model["uri"], cache=self.ctx.home.cache / "models")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.ctx.store.get_job(job_id)
        if job["state"] in TERMINAL:
            raise Conflict(f"job {job_id!r} is already {job['state']}")
        if job_id in self._queue or job["state"] in (NOT_STARTED, QUEUED):
            if job_id in self._queue:
                self._queue.remove(job_id)
            self.ctx.store.update_job(job_id, state=CANCELED, message="canceled while queued", ended_at=time.time())
            self._event(job, EventReason.JobCanceled, "canceled while queued")
            self._dispatch()
        else:
            self.ctx.store.update_job(job_id, state=CANCEL_REQUESTED, message="cancel requested")
            self._event(job, EventReason.JobCancelRequested, "cancel requested")
            runner = self._runners.get(job_id)
            if runner is not None:
                runner.cancel_requested.set()
        return self.job(job_id)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job record: id, endpoint, deployment, state, message, progress, times, output, plus
        ``queue_position`` (Queued jobs) and ``outputs`` (paths of what the job writes)."""
        job = self.ctx.store.get_job(job_id)
        return self._view(job)

    def jobs(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return [self._view(j) for j in self.ctx.store.list_jobs(endpoint)]

    def _view(self, job: dict[str, Any]) -> dict[str, Any]:
        out = dict(job)
        spec = job["spec"]
        dep = spec.get("deployment", {})
        if job["id"] in self._queue:
            out["queue_position"] = self._queue.index(job["id"]) + 1
        output_dir = Path(job["output"])
        job_dir = Path(spec.get("job_dir", output_dir))
        out["outputs"] = {
            "output_dir": str(output_dir),
            "predictions": str(output_dir / dep.get("output_file_name", "predictions.csv")) if dep.get("output_action", "append_row") == "append_row" else None,
            "summary": str(output_dir / "summary.json"),
            "overview": str(job_dir / "overview.json"),
            "errors": str(job_dir / "logs" / "errors"),
            "log": str(job_dir / "logs" / "job.log"),
        }
        out["model_version"] = (spec.get("model") or {}).get("version")
        out["input"] = spec.get("input")
        return out

    def cluster_info(self) -> dict[str, Any]:
        info = self.compute.info()
        info["queued_jobs"] = list(self._queue)
        info["running_jobs"] = list(self._runners)
        info["local"]["worker_start"] = self._worker_start()
        return info

    def _worker_start(self) -> str:
        """How new local workers start: spawned, or forked from the (starting, failed) fork server."""
        p = self._priming
        if p is None:
            return "spawn"
        if not p.done():
            return "fork server starting"
        return "fork server failed" if p.cancelled() or p.exception() is not None else "fork server"

    # --- scheduling -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Start queued jobs in FIFO order while the local cluster has room for the next one.

        A local job that does not fit blocks the local jobs behind it (first come, first
        served; no small job overtakes a big one forever).  Jobs on a user's scheduler never
        wait for local workers.
        """
        blocked = False
        for job_id in list(self._queue):
            try:
                job = self.ctx.store.get_job(job_id)
            except NotFound:
                self._queue.remove(job_id)
                continue
            dep = job["spec"]["deployment"]
            workers = 0
            if dep.get("compute", "local") == "local":
                workers = local_workers(BatchDeployment.model_validate(dep), self.compute.capacity)
                if blocked or not self.compute.fits(workers):
                    if not blocked and job["message"] != "waiting for workers":
                        self.ctx.store.update_job(job_id, message="waiting for workers")
                        self._event(job, EventReason.JobWaiting, f"needs {workers} worker(s); {self.compute.booked} of {self.compute.capacity} in use")
                    blocked = True
                    continue
                self.compute.book(workers)
            self._queue.remove(job_id)
            runner = JobRunner(job_id, workers, store=self.ctx.store, compute=self.compute, fetch_model=self.model_path,
                               tracking_uri=self.ctx.home.tracking_uri, event=self.ctx.event)
            self._runners[job_id] = runner
            task = asyncio.create_task(self._run(runner), name=f"batch-job-{job_id}")
            self._tasks[job_id] = task

    async def _run(self, runner: JobRunner) -> None:
        try:
            await runner.run()
        finally:
            self.compute.unbook(runner.workers)
            self._runners.pop(runner.job_id, None)
            self._tasks.pop(runner.job_id, None)
            if self._started:
                self._dispatch()

    # --- events ---------------------------------------------------------------------------
    def _event(self, job: dict[str, Any], reason: str, message: str, level: str = "info") -> None:
        self.ctx.event(reason, message, level=level, endpoint=job["endpoint"], deployment=job["deployment"], job=job["id"])

    def _cluster_event(self, reason: str, message: str) -> None:
        self.ctx.event(reason, message)
