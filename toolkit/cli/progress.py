"""What the CLI shows while it waits: a batch job's progress and an online deployment's instances.

In a terminal a job gets a tqdm bar (mini-batches, rows/s, ETA) with its events printed above it;
piped (CI logs, ``| tee``) it gets plain lines, one per event and one per change of progress at
most every couple of seconds, so a log shows movement without a redrawn bar.  Ctrl-C stops only
the watching: the job goes on in the host, and the message says how to reattach or cancel.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, TextIO

from ..entities import format_time

__all__ = ["follow_job", "progress_line", "follow_deployment", "interrupted_job_message"]

TERMINAL = ("Completed", "Failed", "Canceled")
_PLAIN_EVERY_S = 1.0


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_line(job: dict[str, Any]) -> str:
    """``Running: 5/13 mini-batches (1 failed), 2,400 rows, 3,403 rows/s, ETA 2s``."""
    p = job.get("progress") or {}
    total = p.get("total_minibatches") or 0
    done = (p.get("completed") or 0) + (p.get("failed") or 0)
    if not total:
        return f"{job.get('state')}: planning mini-batches, 0/? mini-batches, 0 rows"
    parts = [f"{done}/{total} mini-batches" + (f" ({p['failed']} failed)" if p.get("failed") else "")]
    parts.append(f"{p.get('rows') or 0:,} rows")
    if p.get("rows_per_s"):
        parts.append(f"{p['rows_per_s']:,.0f} rows/s")
    if job.get("state") == "Running" and p.get("eta_s") is not None:
        parts.append(f"ETA {_fmt_s(p['eta_s'])}")
    return f"{job.get('state')}: " + ", ".join(parts)


def interrupted_job_message(job_id: str) -> str:
    return (f"\nstopped watching; job {job_id} goes on in the host.\n"
            f"  reattach:  endpoints job stream {job_id}\n"
            f"  cancel:    endpoints job cancel {job_id}")


def _event_line(ev: dict[str, Any]) -> str:
    return f"{format_time(ev['ts'])}  {ev['reason']:<20} {ev['message']}"


def follow_job(job: Any, *, out: TextIO | None = None, poll: float = 0.5,
               tty: bool | None = None, clock: Callable[[], float] = time.monotonic,
               stop: threading.Event | None = None) -> Any:
    """Watch ``job`` (an SDK Job) until it ends or ``stop`` is set; returns it refreshed.  A
    KeyboardInterrupt propagates (the caller prints :func:`interrupted_job_message`)."""
    stop = stop or threading.Event()
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    bar = None
    last_id, last_line, last_plain = 0, "", -_PLAIN_EVERY_S
    try:
        while True:
            data = job.refresh().to_dict()
            for ev in job.events(since=last_id):
                last_id = max(last_id, ev["id"])
                line = _event_line(ev)
                if bar is not None:
                    bar.write(line, file=out)
                else:
                    print(line, file=out, flush=True)
            done = data.get("state") in TERMINAL
            if tty:
                bar = _update_bar(bar, data, out)
            else:
                line = progress_line(data)
                now = clock()
                if line != last_line and (done or now - last_plain >= _PLAIN_EVERY_S):
                    print(line, file=out, flush=True)
                    last_line, last_plain = line, now
            if done or stop.wait(poll):
                return job
    finally:
        if bar is not None:
            bar.close()


def _update_bar(bar: Any, data: dict[str, Any], out: TextIO) -> Any:
    from tqdm import tqdm

    p = data.get("progress") or {}
    total = p.get("total_minibatches") or None
    if bar is None:
        bar = tqdm(total=total, desc=data.get("id"), unit="mini-batch", file=out, dynamic_ncols=True)
    if total and bar.total != total:
        bar.total = total
    bar.n = (p.get("completed") or 0) + (p.get("failed") or 0)
    post = {"state": data.get("state"), "rows": f"{p.get('rows') or 0:,}"}
    if p.get("rows_per_s"):
        post["rows/s"] = f"{p['rows_per_s']:,.0f}"
    if p.get("failed"):
        post["failed"] = p["failed"]
    bar.set_postfix(post, refresh=False)
    bar.refresh()
    return bar


def follow_deployment(get: Callable[[], Any], *, out: TextIO | None = None, poll: float = 0.5,
                      timeout: float = 900.0) -> Any:
    """Print each change of a deployment's instances (``instance 1 of 2 ready (3 s)``) until it
    settles; returns the last view.  ``get`` returns the deployment as the SDK shows it."""
    out = out or sys.stderr
    started, last = time.monotonic(), ""
    while True:
        dep = get()
        d = dep.to_dict() if hasattr(dep, "to_dict") else dict(dep)
        state = d.get("provisioning_state")
        instances = d.get("instances") or []
        ready = sum(1 for i in instances if i.get("state") == "Ready")
        waited = time.monotonic() - started
        line = (f"{d.get('name')}: {state}, instances {ready} of {len(instances) or d.get('instance_count', '?')} "
                f"ready" + "".join(f"; {i.get('id')} {i.get('state')}" for i in instances if i.get("state") != "Ready"))
        if line != last:
            print(f"{line} ({waited:.0f} s)", file=out, flush=True)
            last = line
        if state in ("Succeeded", "Failed", "Canceled") or waited > timeout:
            return dep
        time.sleep(poll)
