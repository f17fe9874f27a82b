"""``endpoints online-deployment ...``: create/update (following the instances as they start),
show, list, delete, logs (``--follow``) and ``test`` (score a spec locally, creating nothing)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import InvalidSpec
from ..home import Home
from .common import EXIT_FAILED, EXIT_OK, add_common, add_lookup_verbs, add_spec_args, deployment_names, load_spec_args, workspace
from .output import emit, show_with_events, table

__all__ = ["register", "new_lines"]

_DEP_COLS = ["name", "endpoint_name", "model", "model_version", "instance_type", "instance_count", "provisioning_state"]


def cmd_od_create(args: argparse.Namespace) -> int:
    from ..specs import OnlineDeployment

    spec = load_spec_args(OnlineDeployment, args, name=args.name, endpoint_name=args.endpoint_name)
    ws = workspace(args)
    ops = ws.online_deployments
    put = ops.create if args.verb == "create" else ops.create_or_update  # create never replaces
    if args.no_wait and not args.all_traffic:
        result = put(spec, wait=False)
    else:
        from .progress import follow_deployment

        put(spec, wait=False)
        # Instances take seconds to load a model: show them starting instead of a silent wait.
        follow_deployment(lambda: ops.get(spec.endpoint_name, spec.name))
        result = ops.wait(spec.endpoint_name, spec.name)  # raises with the reason if it Failed
        if args.all_traffic:
            ws.online_endpoints.update_traffic(spec.endpoint_name, {spec.name: 100})
            print(f"traffic: {spec.name}=100", file=sys.stderr)
            result = ops.get(spec.endpoint_name, spec.name)
    emit(args, result, show_with_events)
    return EXIT_OK


def cmd_od_show(args: argparse.Namespace) -> int:
    e, n = deployment_names(args)
    emit(args, workspace(args, start=False).online_deployments.get(e, n), show_with_events)
    return EXIT_OK


def cmd_od_list(args: argparse.Namespace) -> int:
    emit(args, list(workspace(args, start=False).online_deployments.list(args.endpoint_name)),
         lambda rows: table(rows, _DEP_COLS))
    return EXIT_OK


def cmd_od_delete(args: argparse.Namespace) -> int:
    e, n = deployment_names(args)
    emit(args, workspace(args).online_deployments.delete(e, n), lambda d: f"deleted deployment {d['name']} of {d['endpoint']}")
    return EXIT_OK


def cmd_od_logs(args: argparse.Namespace) -> int:
    e, n = deployment_names(args)
    ops = workspace(args, start=False).online_deployments
    logs = ops.get_logs(e, n, lines=args.lines)
    if not args.follow:
        emit(args, {"logs": logs} if args.output == "json" else logs, lambda d: d)
        return EXIT_OK
    if args.output == "json":
        raise InvalidSpec("--follow prints lines as they come; it cannot be combined with -o json")
    seen = logs.splitlines()
    if logs:
        print(logs, flush=True)
    try:
        while True:
            time.sleep(1.0)
            now = ops.get_logs(e, n, lines=max(args.lines, 1000)).splitlines()
            fresh = new_lines(seen, now)
            if fresh:
                print("\n".join(fresh), flush=True)
            seen = now
    except KeyboardInterrupt:
        return EXIT_OK


def new_lines(before: list[str], after: list[str]) -> list[str]:
    """The lines of ``after`` past the longest overlap of ``before``'s end with ``after``'s start."""
    for k in range(min(len(before), len(after)), 0, -1):
        if after[:k] == before[-k:]:
            return after[k:]
    return after


def cmd_od_test(args: argparse.Namespace) -> int:
    from ..operations import score_spec_locally
    from ..specs import OnlineDeployment, load_spec

    spec = load_spec(OnlineDeployment, args.file, args.set)
    status, body = score_spec_locally(spec, Path(args.request_file), home=Home.resolve(args.home))
    print(json.dumps(body))
    return EXIT_OK if status < 400 else EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:
    od = sub.add_parser("online-deployment", help="online deployments").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update"):
        p = od.add_parser(verb)
        add_common(p)
        add_spec_args(p, deployment=True)
        p.add_argument("--all-traffic", action="store_true", help="send 100%% of traffic here once it is ready")
        p.add_argument("--no-wait", action="store_true", help="return before the deployment is ready")
        p.set_defaults(func=cmd_od_create)
    add_lookup_verbs(od, cmd_od_show, cmd_od_delete, cmd_od_list, deployment=True)
    p = od.add_parser("get-logs")
    add_common(p)
    p.add_argument("-e", "--endpoint-name", required=True)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-f", "--file", default=None)
    p.add_argument("--lines", type=int, default=100)
    p.add_argument("--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    p.set_defaults(func=cmd_od_logs)
    p = od.add_parser("test", help="score a spec in this process, creating nothing (a local endpoint)")
    add_common(p)
    p.add_argument("-f", "--file", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("-r", "--request-file", required=True)
    p.set_defaults(func=cmd_od_test)
