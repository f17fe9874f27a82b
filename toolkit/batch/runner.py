"""One job's run: plan, score the mini-batches on Dask, record each one, finalize.

Durability rests on one order of events: a worker writes a mini-batch's part file (atomically),
*then* the runner records the mini-batch as Completed in the store, *then* counts it.  A host
that dies at any point leaves either a recorded mini-batch with its part on disk (skipped on
resume) or an unrecorded one (scored again, its part replaced by the same rows), so the final
output holds every input row exactly once.

Retries are the runner's, not Dask's ``retries=``: each attempt is a fresh task, so the runner
can count attempts, enforce the per-mini-batch timeout (measured from when a worker starts the
task, seen through ``Client.call_stack``), and record MiniBatchRetried events.  A worker process
that dies is handled by Dask itself (the task is rescheduled on another worker); only after
Dask gives up (KilledWorker) does that count as a failed attempt here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ToolkitError
from ..events import EventReason
from ..specs import BatchDeployment
from .cluster import LocalPool, RemotePool, worker_env
from .inputs import MiniBatch, plan_minibatches
from .job import CANCELED, COMPLETED, FAILED, FINALIZING, RUNNING, JobPaths
from .output import merge_parts, write_error_log, write_json, write_part_bytes
from .task import TaskConfig, run_minibatch
from .tally import Attempt, Tally, describe_error

if TYPE_CHECKING:
    from ..store import Store
    from .cluster import Compute

__all__ = ["JobRunner", "local_workers"]

log = logging.getLogger("toolkit.batch")

_TICK_S = 0.5          # how often the runner looks at timeouts, cancellation and elapsed time
_STACK_POLL_S = 1.0    # how often it asks which tasks have started (for the timeout clock)


def local_workers(dep: BatchDeployment, capacity: int) -> int:
    """Workers a local job reserves: its instance_count, at most the whole local capacity."""
    return max(1, min(dep.resources.instance_count, capacity))


class JobRunner:
    def __init__(self, job_id: str, workers: int, *, store: "Store", compute: "Compute",
                 fetch_model: Callable[[dict[str, Any]], str], tracking_uri: str, event: Callable[..., None]) -> None:
        """Run one job: ``store`` holds its records, ``compute`` lends the workers, ``fetch_model``
        turns the job's model record into a local folder, ``event`` records an event (as
        :meth:`toolkit.context.HostContext.event`).  Nothing else of the owning service is reachable."""
        self.store = store
        self.compute = compute
        self.fetch_model = fetch_model
        self.tracking_uri = tracking_uri
        self.record_event = event
        self.job_id = job_id
        self.workers = workers            # booked local workers (0 for a remote scheduler)
        self.cancel_requested = asyncio.Event()
        self.pool: LocalPool | RemotePool | None = None
        self.job: dict[str, Any] = self.store.get_job(job_id)
        self.dep = BatchDeployment.model_validate(self.job["spec"]["deployment"])
        self.paths = JobPaths.of(self.job)
        self.endpoint = self.job["endpoint"]
        # Parts take the output's format, so a CSV output is finalized by concatenating bytes.
        self.part_fmt = "parquet" if self.dep.output_file_name.endswith(".parquet") else "csv"
        self._last_overview = 0.0

    # --- events and records -------------------------------------------------------------
    def _event(self, reason: str, message: str, level: str = "info") -> None:
        self.record_event(reason, message, level=level, endpoint=self.endpoint,
                          deployment=self.job["deployment"], job=self.job_id)
        try:
            self.paths.logs.mkdir(parents=True, exist_ok=True)
            with (self.paths.logs / "job.log").open("a") as fh:
                fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {level.upper()} {reason}: {message}\n")
        except OSError:
            pass

    def _progress(self, t: Tally) -> dict[str, Any]:
        started = self.job.get("started_at") or time.time()
        return {
            "total_minibatches": t.total, "completed": t.completed, "failed": t.failed, "rows": t.rows,
            "failed_files": t.failed_files, "elapsed_s": round(time.time() - started, 1), **t.rate(),
        }

    def _save_progress(self, t: Tally, force: bool = False) -> None:
        progress = self._progress(t)
        self.store.update_job(self.job_id, progress=progress)
        now = time.monotonic()
        if force or now - self._last_overview > 1.0:
            self._last_overview = now
            write_json(self.paths.overview, {
                "job": self.job_id, "state": self.store.get_job(self.job_id)["state"], "progress": progress,
                "failed_files": t.failed_names, "updated_at": time.time(),
            })

    def _set_state(self, state: str, message: str = "", **extra: Any) -> None:
        self.store.update_job(self.job_id, state=state, message=message, **extra)
        self.job = self.store.get_job(self.job_id)

    # --- the run --------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            # The host is stopping: the job stays Running and the next host resumes it.
            raise
        except Exception as err:
            msg = err.message if isinstance(err, ToolkitError) else f"{type(err).__name__}: {err}"
            log.exception("batch job %s failed", self.job_id)
            self._set_state(FAILED, f"job failed: {msg}", ended_at=time.time())
            self._event(EventReason.JobFailed, msg, "error")
        finally:
            if isinstance(self.pool, LocalPool):
                self.compute.release(self.pool, self.workers)

    async def _run(self) -> None:
        resumed = bool(self.job.get("started_at"))
        self._set_state(RUNNING, "resumed" if resumed else "", started_at=self.job.get("started_at") or time.time())
        if self.dep.compute == "local":
            self.pool = await self._acquire()  # workers start while we plan and fetch the model
        plan = await asyncio.to_thread(self._plan)
        tally, todo = self._recorded(plan)
        if resumed:
            self._event(EventReason.JobResumed, f"{len(plan) - len(todo)} of {len(plan)} mini-batches already done; scoring {len(todo)}")
        else:
            self._event(EventReason.JobStarted, f"{len(plan)} mini-batches over {self.job['spec'].get('files', '?')} files on {self.dep.compute}")
        self._save_progress(tally, force=True)

        outcome = "done"
        if todo:
            model_path = await asyncio.to_thread(self.fetch_model, self.job["spec"]["model"])
            outcome = await self._score(todo, tally, model_path)
        if outcome == "done" and self.cancel_requested.is_set():
            outcome = "canceled"
        if outcome == "canceled":
            self._set_state(CANCELED, "canceled by request", ended_at=time.time())
            self._save_progress(tally, force=True)
            self._event(EventReason.JobCanceled, f"canceled after {tally.completed} of {tally.total} mini-batches")
            return
        if outcome == "threshold":
            msg = (f"error_threshold {self.dep.error_threshold} exceeded: {tally.failed_files} file(s) failed; "
                   f"first: {tally.first_error}")
            self._set_state(FAILED, msg, ended_at=time.time())
            self._save_progress(tally, force=True)
            self._event(EventReason.JobFailed, msg, "error")
            return
        if self._nothing_scored(tally):
            # Whatever error_threshold allows, a job that scored no file is not a success.
            msg = (f"every input file failed ({tally.failed_files} of {self.job['spec'].get('files', '?')}); "
                   f"nothing was scored; first: {tally.first_error}")
            self._set_state(FAILED, msg, ended_at=time.time())
            self._save_progress(tally, force=True)
            self._event(EventReason.JobFailed, msg, "error")
            return
        await self._finalize(tally)

    def _nothing_scored(self, tally: Tally) -> bool:
        files = self.job["spec"].get("files") or 0
        return tally.rows == 0 and tally.failed_files > 0 and tally.failed_files >= files

    def _plan(self) -> list[MiniBatch]:
        """The job's mini-batches, planned once and kept in the job folder (a resume reuses it)."""
        if self.paths.plan.exists():
            return [MiniBatch.from_dict(d) for d in json.loads(self.paths.plan.read_text())]
        files = json.loads(self.paths.files.read_text())
        rows = None if self.dep.code_configuration else self.dep.mini_batch_rows
        plan = plan_minibatches(files, self.dep.mini_batch_size, rows)
        write_json(self.paths.plan, [mb.to_dict() for mb in plan])
        return plan

    def _recorded(self, plan: list[MiniBatch]) -> tuple[Tally, list[MiniBatch]]:
        """What previous runs finished (counted) and what is left to score."""
        tally = Tally(total=len(plan))
        needs_part = self.dep.output_action == "append_row"
        done: set[int] = set()
        for m in self.store.minibatches(self.job_id):
            if m["state"] == "Completed":
                if needs_part and m["rows"] and not self.paths.part(m["idx"], self.part_fmt).exists():
                    continue  # recorded but its part is gone: score it again
                tally.completed += 1
            elif m["state"] == "Failed":
                tally.failed += 1
            else:
                continue
            done.add(m["idx"])
            tally.rows += m["rows"]
            tally.failed_files += m["failed_files"]
            errors = json.loads(m["error"]) if m["error"].startswith("[") else []
            for f in errors:
                tally.failed_names.append(f.get("name", ""))
                tally.first_error = tally.first_error or f"{f.get('name')}: {f.get('error')}"
        return tally, [mb for mb in plan if mb.idx not in done]

    def _task_config(self, model_path: str) -> TaskConfig:
        spec = self.job["spec"]
        local = self.dep.compute == "local"
        self.paths.parts.mkdir(parents=True, exist_ok=True)
        return TaskConfig(
            job_id=self.job_id, model_path=model_path, model_uri=spec["model"]["uri"],
            tracking_uri=self.tracking_uri, script=spec.get("script"),
            # A remote worker may not see this machine's disk: it returns the part instead.
            parts_dir=str(self.paths.parts) if local else None,
            output_action=self.dep.output_action, part_format=self.part_fmt, logging_level=self.dep.logging_level,
            env=dict(self.dep.environment_variables),
        )

    async def _acquire(self) -> LocalPool | RemotePool:
        if self.dep.compute == "local":
            env = worker_env(self.dep.max_concurrency_per_instance, self.workers, self.dep.environment_variables)
            return await self.compute.acquire(self.dep.max_concurrency_per_instance, self.workers, env)
        return await self.compute.remote(self.dep.compute)

    async def _score(self, todo: list[MiniBatch], tally: Tally, model_path: str) -> str:
        if self.pool is None:
            self.pool = await self._acquire()
        tally.run_started = time.monotonic()
        client = self.pool.client
        cfg = self._task_config(model_path)
        threads = self.dep.max_concurrency_per_instance
        # Keep every reserved thread busy, plus one queued per worker so a worker never idles
        # between two mini-batches; more in flight would only start timeout clocks early.
        window = (self.workers or self.dep.resources.instance_count) * threads + max(1, self.workers)
        timeout = float(self.dep.retry_settings.timeout)
        max_retries = self.dep.retry_settings.max_retries
        pending: deque[MiniBatch] = deque(todo)
        attempts: dict[int, int] = {}
        inflight: dict[asyncio.Future[Any], Attempt] = {}
        last_poll = 0.0

        def submit(mb: MiniBatch) -> None:
            n = attempts.get(mb.idx, 0)
            key = f"{self.job_id}-mb{mb.idx:06d}-a{n}"
            fut = client.submit(run_minibatch, cfg, mb, n, key=key, pure=False)
            waiter = asyncio.ensure_future(_resolve(fut))
            inflight[waiter] = Attempt(mb, n, fut, time.monotonic())

        try:
            while pending or inflight:
                if self.cancel_requested.is_set():
                    return "canceled"
                while pending and len(inflight) < window:
                    submit(pending.popleft())
                done, _ = await asyncio.wait(list(inflight), timeout=_TICK_S, return_when=asyncio.FIRST_COMPLETED)
                for waiter in done:
                    att = inflight.pop(waiter)
                    ok, value = waiter.result()
                    if ok:
                        await self._completed(att, value, tally)
                    else:
                        self._attempt_failed(att, value, attempts, max_retries, pending, tally)
                    if self._over_threshold(tally):
                        return "threshold"
                now = time.monotonic()
                if inflight and now - last_poll >= _STACK_POLL_S:
                    last_poll = now
                    await self._mark_started(client, inflight)
                for waiter, att in list(inflight.items()):
                    if att.started is not None and now - att.started > timeout:
                        inflight.pop(waiter)
                        waiter.cancel()
                        await self._kill(client, att)
                        self._attempt_failed(att, f"timed out after {timeout:g}s (retry_settings.timeout)",
                                             attempts, max_retries, pending, tally)
                        if self._over_threshold(tally):
                            return "threshold"
                self._save_progress(tally)
            return "done"
        finally:
            # Cancel what is still running (cancel, threshold, host stop) and drop every future:
            # futures held by a client keep an adaptive cluster from scaling down.
            if inflight:
                try:
                    await asyncio.shield(client.cancel([a.future for a in inflight.values()], force=True))
                except (Exception, asyncio.CancelledError):
                    pass
            for waiter in inflight:
                waiter.cancel()
            inflight.clear()

    async def _mark_started(self, client: Any, inflight: dict[asyncio.Future[Any], Attempt]) -> None:
        waiting = {a.future.key: a for a in inflight.values() if a.started is None}
        if not waiting:
            return
        try:
            stacks = await client.call_stack(keys=list(waiting))
        except Exception:  # a worker leaving mid-call: ask again next time
            return
        now = time.monotonic()
        for worker, running in (stacks or {}).items():
            for key in running:
                att = waiting.get(key)
                if att is not None:
                    att.started, att.worker = now, worker

    async def _kill(self, client: Any, att: Attempt) -> None:
        """Stop a mini-batch that overran: cancel it, and on the local cluster restart the worker
        (a Python thread cannot be interrupted; its process can)."""
        try:
            await client.cancel([att.future], force=True)
        except Exception:
            pass
        if isinstance(self.pool, LocalPool) and att.worker:
            async def restart() -> None:
                try:
                    await client.restart_workers([att.worker], timeout=60, raise_for_error=False)
                except Exception as err:
                    log.warning("batch: restarting worker %s failed: %s", att.worker, err)
            asyncio.ensure_future(restart())

    async def _completed(self, att: Attempt, summary: dict[str, Any], tally: Tally) -> None:
        idx = att.mb.idx
        if summary.get("data") is not None:
            await asyncio.to_thread(write_part_bytes, self.paths.part(idx, self.part_fmt), summary["data"])
        failed = summary.get("failed") or []
        for f in failed:
            write_error_log(self.paths.errors, f["name"], f["error"], idx, att.attempt + 1)
        # Recorded first, counted second (see the module docstring).
        self.store.put_minibatch(self.job_id, idx, "Completed", attempts=att.attempt + 1, rows=summary["rows"],
                                 failed_files=len(failed), error=json.dumps(failed) if failed else "")
        tally.completed += 1
        tally.rows += summary["rows"]
        tally.failed_files += len(failed)
        tally.run_done += 1
        tally.run_rows += summary["rows"]
        for k, v in (summary.get("timings") or {}).items():
            name = k.removesuffix("_s")
            tally.worker_s[name] = tally.worker_s.get(name, 0.0) + v
        for f in failed:
            tally.failed_names.append(f["name"])
            tally.first_error = tally.first_error or f"{f['name']}: {f['error']}"
            self._event(EventReason.FileFailed, f"{f['name']}: {f['error']}", "warning")

    def _attempt_failed(self, att: Attempt, error: Any, attempts: dict[int, int], max_retries: int,
                        pending: deque[MiniBatch], tally: Tally) -> None:
        idx = att.mb.idx
        msg = describe_error(error)
        attempts[idx] = att.attempt + 1
        if attempts[idx] <= max_retries:
            self._event(EventReason.MiniBatchRetried, f"mini-batch {idx} attempt {attempts[idx]} of {max_retries + 1} failed: {msg}", "warning")
            pending.appendleft(att.mb)
            return
        names = list(dict.fromkeys(s.name for s in att.mb.slices))
        failed = [{"file": s, "name": n, "error": msg} for s, n in zip(att.mb.files, names)]
        for f in failed:
            write_error_log(self.paths.errors, f["name"], msg, idx, attempts[idx])
        self.store.put_minibatch(self.job_id, idx, "Failed", attempts=attempts[idx], failed_files=len(failed),
                                 error=json.dumps(failed))
        tally.failed += 1
        tally.run_done += 1
        tally.failed_files += len(failed)
        tally.failed_names.extend(names)
        tally.first_error = tally.first_error or f"{', '.join(names)}: {msg}"
        self._event(EventReason.MiniBatchFailed, f"mini-batch {idx} ({', '.join(names)}) failed after {attempts[idx]} attempt(s): {msg}", "error")

    def _over_threshold(self, tally: Tally) -> bool:
        return self.dep.error_threshold >= 0 and tally.failed_files > self.dep.error_threshold

    async def _finalize(self, tally: Tally) -> None:
        if self.cancel_requested.is_set():
            self._set_state(CANCELED, "canceled by request", ended_at=time.time())
            self._event(EventReason.JobCanceled, "canceled before finalizing")
            return
        self._set_state(FINALIZING)
        self._event(EventReason.JobFinalizing, f"merging {tally.completed} mini-batch outputs")
        out = self.paths.output_dir
        summary: dict[str, Any] = {
            "job": self.job_id, "endpoint": self.endpoint, "deployment": self.job["deployment"],
            "model": self.job["spec"]["model"].get("version"), "input": self.job["spec"]["input"],
            "output_action": self.dep.output_action, **self._progress(tally),
            "files": self.job["spec"].get("files"), "failed_file_names": tally.failed_names,
        }
        if self.dep.output_action == "append_row":
            parts = [self.paths.part(m["idx"], self.part_fmt) for m in self.store.minibatches(self.job_id)
                     if m["state"] == "Completed" and m["rows"]]
            target = out / self.dep.output_file_name
            merged = await asyncio.to_thread(merge_parts, parts, target)
            summary["predictions"] = str(target)
            summary["rows_written"] = merged
            # Never silently: a mismatch means a lost or doubled part.  (A scoring script's
            # CSV may hold quoted line breaks, so its line count is not its row count.)
            if merged != tally.rows and not self.dep.code_configuration:
                raise RuntimeError(f"merged {merged} rows but {tally.rows} were recorded")
        write_json(out / "summary.json", summary)
        msg = f"scored {tally.rows} rows in {tally.total} mini-batches"
        if tally.failed_files:
            msg += f"; {tally.failed_files} file(s) failed (see {self.paths.errors})"
        self._set_state(COMPLETED, msg, ended_at=time.time())
        self._save_progress(tally, force=True)
        self._event(EventReason.JobCompleted, msg)
        # Parts are only removed once the job is Completed: a crash before this point
        # finalizes again from them.
        shutil.rmtree(self.paths.parts, ignore_errors=True)


async def _resolve(fut: Any) -> tuple[bool, Any]:
    """(True, result) or (False, error) of a Dask future, releasing it either way."""
    try:
        return True, await fut
    except asyncio.CancelledError:
        raise
    except BaseException as err:  # noqa: BLE001 - any task failure is an attempt failure
        return False, err
    finally:
        try:
            fut.release()
        except Exception:
            pass
