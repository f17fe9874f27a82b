"""``endpoints advise``: recommend online or batch for a workload; ``--apply`` deploys it.

The plan (what is created or changed, where traffic moves) comes from the SDK's
``Workspace.apply(..., dry_run=True)``; this module prints it, asks before changing what already
serves (a prompt in a terminal, ``--yes`` elsewhere) and then applies that same plan.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InvalidSpec
from .common import EXIT_FAILED, EXIT_OK, add_common, workspace
from .output import emit

__all__ = ["register", "confirm"]

_WORKLOAD_FLAGS = ("model", "frequency", "latency_ms", "deadline", "rows_per_request", "rows_per_run",
                   "peak_rps", "avg_rps", "hours_per_day")


def cmd_advise(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.file:
        from ..specs import read_spec_file

        body = read_spec_file(args.file) or {}
        if not isinstance(body, dict):
            raise InvalidSpec(f"{args.file}: a workload must be a mapping of fields, got {type(body).__name__}")
    for key in _WORKLOAD_FLAGS:
        value = getattr(args, key, None)
        if value is not None:
            body[key] = value
    if args.yes and not args.apply:
        raise InvalidSpec("--yes confirms --apply; give --apply too")
    ws = workspace(args)
    advice = ws.advise(body)
    emit(args, advice.to_dict(), lambda d: repr(advice))
    if args.apply or args.dry_run:
        return _apply_advice(ws, advice, args)
    return EXIT_OK


def _apply_advice(ws: Any, advice: Any, args: argparse.Namespace) -> int:
    plan = ws.apply(advice, dry_run=True)
    say = (lambda text: print(text, file=sys.stderr))
    say("\nplan:\n" + plan.describe())
    if args.dry_run:
        say("dry run: nothing was changed")
        return EXIT_OK
    live = plan.live
    if live and not args.yes and not confirm(f"this changes {', '.join(live)}; apply?"):
        say(f"not applied: it would change {', '.join(live)}. Re-run with --yes to apply, or --dry-run to only look.")
        return EXIT_FAILED
    ws.apply(plan, on_applied=lambda change: say(f"applied: {change.action} {change.label}"))
    return EXIT_OK


def confirm(question: str) -> bool:
    """A yes from a person at a terminal; never a yes without one."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("advise", help="recommend online or batch for a workload")
    add_common(p)
    p.add_argument("-f", "--file", help="workload YAML")
    p.add_argument("--model")
    p.add_argument("--frequency", help='"per request", "every 1 week", "monthly"...')
    p.add_argument("--latency-ms", type=float)
    p.add_argument("--deadline", help='e.g. "12h"')
    p.add_argument("--rows-per-request", type=int)
    p.add_argument("--rows-per-run", type=int)
    p.add_argument("--peak-rps", type=float)
    p.add_argument("--avg-rps", type=float)
    p.add_argument("--hours-per-day", type=float)
    p.add_argument("--apply", action="store_true",
                   help="deploy the recommended option (asks first when it would change an existing endpoint)")
    p.add_argument("--yes", "-y", action="store_true", help="with --apply: do not ask before changing existing resources")
    p.add_argument("--dry-run", action="store_true", help="show what --apply would create or change, change nothing")
    p.set_defaults(func=cmd_advise)
