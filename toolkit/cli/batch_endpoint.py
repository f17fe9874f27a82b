"""``endpoints batch-endpoint ...``: create/update, show, list, delete, and ``invoke`` (start a
job over a folder, file, glob or URL, optionally following it)."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK, add_common, add_lookup_verbs, add_spec_args, load_spec_args, name_of, workspace
from .job import job_exit, stream_job
from .output import emit, job_human, kv, table

__all__ = ["register"]

_BEP_COLS = ["name", "defaults", "deployments", "provisioning_state"]


def cmd_be_create(args: argparse.Namespace) -> int:
    from ..specs import BatchEndpoint

    spec = load_spec_args(BatchEndpoint, args, name=args.name)
    ops = workspace(args).batch_endpoints
    result = ops.create(spec) if args.verb == "create" else ops.create_or_update(spec)
    emit(args, result, lambda d: kv(d))
    return EXIT_OK


def cmd_be_show(args: argparse.Namespace) -> int:
    emit(args, workspace(args, start=False).batch_endpoints.get(name_of(args)), lambda d: kv(d))
    return EXIT_OK


def cmd_be_list(args: argparse.Namespace) -> int:
    emit(args, list(workspace(args, start=False).batch_endpoints.list()), lambda rows: table(rows, _BEP_COLS))
    return EXIT_OK


def cmd_be_delete(args: argparse.Namespace) -> int:
    emit(args, workspace(args).batch_endpoints.delete(name_of(args)), lambda d: f"deleted batch endpoint {d['name']}")
    return EXIT_OK


def cmd_be_invoke(args: argparse.Namespace) -> int:
    overrides = {"mini_batch_size": args.mini_batch_size, "instance_count": args.instance_count,
                 "max_retries": args.max_retries, "timeout": args.timeout, "error_threshold": args.error_threshold,
                 "output_file_name": args.output_file_name, "mini_batch_rows": args.mini_batch_rows}
    ws = workspace(args)
    job = ws.batch_endpoints.invoke(args.name, args.input, deployment_name=args.deployment_name,
                                    output=args.output_path, **overrides)
    if args.stream:
        print(f"job {job.id} {job.state}; following it (Ctrl-C stops watching, not the job)", file=sys.stderr)
        stream_job(job)
        job.refresh()
    emit(args, job, job_human)
    return job_exit(job.to_dict())


def register(sub: argparse._SubParsersAction) -> None:
    be = sub.add_parser("batch-endpoint", help="batch endpoints").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update"):
        p = be.add_parser(verb)
        add_common(p)
        add_spec_args(p)
        p.set_defaults(func=cmd_be_create)
    add_lookup_verbs(be, cmd_be_show, cmd_be_delete, cmd_be_list)
    p = be.add_parser("invoke")
    add_common(p)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-i", "--input", required=True, help="folder, file, glob or fsspec URL")
    p.add_argument("-d", "--deployment-name")
    p.add_argument("--output-path", "--output-dir", dest="output_path", help="a new folder for the outputs")
    p.add_argument("--mini-batch-size", type=int)
    p.add_argument("--mini-batch-rows", type=int)
    p.add_argument("--instance-count", type=int)
    p.add_argument("--max-retries", type=int)
    p.add_argument("--timeout", type=int)
    p.add_argument("--error-threshold", type=int)
    p.add_argument("--output-file-name")
    p.add_argument("--stream", action="store_true", help="follow the job until it ends")
    p.set_defaults(func=cmd_be_invoke)
