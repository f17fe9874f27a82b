"""``endpoints batch-deployment ...``: create/update (optionally the endpoint's default), show,
list, delete."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, add_common, add_lookup_verbs, add_spec_args, deployment_names, load_spec_args, workspace
from .output import emit, kv, table

__all__ = ["register"]

_BDEP_COLS = ["name", "endpoint_name", "model", "model_version", "compute", "mini_batch_size", "provisioning_state"]


def cmd_bd_create(args: argparse.Namespace) -> int:
    from ..specs import BatchDeployment

    spec = load_spec_args(BatchDeployment, args, name=args.name, endpoint_name=args.endpoint_name)
    ops = workspace(args).batch_deployments
    put = ops.create if args.verb == "create" else ops.create_or_update  # create never replaces
    emit(args, put(spec, set_default=args.set_default), lambda d: kv(d))
    return EXIT_OK


def cmd_bd_show(args: argparse.Namespace) -> int:
    e, n = deployment_names(args)
    emit(args, workspace(args, start=False).batch_deployments.get(e, n), lambda d: kv(d))
    return EXIT_OK


def cmd_bd_list(args: argparse.Namespace) -> int:
    emit(args, list(workspace(args, start=False).batch_deployments.list(args.endpoint_name)),
         lambda rows: table(rows, _BDEP_COLS))
    return EXIT_OK


def cmd_bd_delete(args: argparse.Namespace) -> int:
    e, n = deployment_names(args)
    emit(args, workspace(args).batch_deployments.delete(e, n),
         lambda d: f"deleted batch deployment {d['name']} of {d['endpoint']}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    bd = sub.add_parser("batch-deployment", help="batch deployments").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update"):
        p = bd.add_parser(verb)
        add_common(p)
        add_spec_args(p, deployment=True)
        p.add_argument("--set-default", action="store_true")
        p.set_defaults(func=cmd_bd_create)
    add_lookup_verbs(bd, cmd_bd_show, cmd_bd_delete, cmd_bd_list, deployment=True)
