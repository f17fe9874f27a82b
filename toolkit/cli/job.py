"""``endpoints job show | list | stream | cancel``, and following a job as it runs (shared with
``batch-endpoint invoke --stream``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, Interrupted, add_common, workspace
from .output import emit, job_human, table

__all__ = ["register", "stream_job", "job_exit"]

_JOB_COLS = ["id", "endpoint", "deployment", "state", "progress", "output"]


def job_exit(job: dict[str, Any]) -> int:
    """0 for a job that scored its input (a warning when some files failed), else 1."""
    state = job.get("state")
    failed_files = (job.get("progress") or {}).get("failed_files") or 0
    if state == "Completed" and failed_files:
        print(f"warning: job {job.get('id')} completed, but {failed_files} file(s) failed: {job.get('message')}",
              file=sys.stderr)
    if state in ("Failed", "Canceled"):
        return EXIT_FAILED
    return EXIT_OK


def stream_job(job: Any) -> None:
    """Follow ``job`` until it ends; on Ctrl-C say how to reattach or cancel and raise Interrupted.

    Ctrl-C only sets a flag that the follow loop reads between polls: a KeyboardInterrupt raised
    wherever the main thread happens to be can land in a finalizer, where Python prints and drops
    it, and the CLI would go on following.  A second Ctrl-C interrupts at once.
    """
    from .progress import follow_job, interrupted_job_message

    stop = threading.Event()

    def on_ctrl_c(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    try:
        previous = signal.signal(signal.SIGINT, on_ctrl_c)
    except ValueError:  # not the main thread (an embedding program): Ctrl-C stays as it was
        previous = None
    try:
        follow_job(job, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        print(interrupted_job_message(job.id), file=sys.stderr)
        raise Interrupted()


def cmd_job_show(args: argparse.Namespace) -> int:
    emit(args, workspace(args, start=False).jobs.get(args.id), job_human)
    return EXIT_OK


def cmd_job_list(args: argparse.Namespace) -> int:
    emit(args, list(workspace(args, start=False).jobs.list(args.endpoint_name, args.state)),
         lambda rows: table(rows, _JOB_COLS))
    return EXIT_OK


def cmd_job_stream(args: argparse.Namespace) -> int:
    job = workspace(args, start=False).jobs.get(args.id)
    stream_job(job)
    data = job.refresh().to_dict()
    print(f"job {job.id}: {data.get('state')}" + (f": {data['message']}" if data.get("message") else ""))
    code = job_exit(data)
    return EXIT_OK if code == EXIT_OK and data.get("state") == "Completed" else EXIT_FAILED


def cmd_job_cancel(args: argparse.Namespace) -> int:
    emit(args, workspace(args).jobs.cancel(args.id), job_human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    job = sub.add_parser("job", help="batch jobs").add_subparsers(dest="verb", required=True)
    for verb, func in (("show", cmd_job_show), ("stream", cmd_job_stream), ("cancel", cmd_job_cancel)):
        p = job.add_parser(verb)
        add_common(p)
        p.add_argument("id")
        p.set_defaults(func=func)
    p = job.add_parser("list")
    add_common(p)
    p.add_argument("-e", "--endpoint-name")
    p.add_argument("--state")
    p.set_defaults(func=cmd_job_list)
