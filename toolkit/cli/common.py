"""What every command shares: exit codes, the workspace to talk to, and reading names and specs
from the command line (flags or ``-f spec.yml``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import Interrupted, InvalidSpec

__all__ = [
    "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "Interrupted", "workspace", "parse_pairs", "load_spec_args",
    "name_of", "deployment_names", "add_common", "add_spec_args", "add_lookup_verbs",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2  # and 130 for Interrupted (Ctrl-C after the CLI said how to go on)


def workspace(args: argparse.Namespace, start: bool = True) -> Any:
    from ..workspace import Workspace

    return Workspace(args.home, start=start, port=getattr(args, "port", None))


def parse_pairs(text: str | None, flag: str) -> dict[str, int]:
    """``"blue=90 green=10"`` (spaces or commas) -> {"blue": 90, "green": 10}."""
    out: dict[str, int] = {}
    for item in (text or "").replace(",", " ").split():
        name, sep, pct = item.partition("=")
        if not sep or not pct.strip().lstrip("-").isdigit():
            raise InvalidSpec(f"{flag}: {item!r} is not name=percent")
        out[name.strip()] = int(pct)
    return out


def load_spec_args(cls: Any, args: argparse.Namespace, **extra: Any) -> Any:
    """The spec of ``-f`` (with ``--set``), else one built from flags (``extra``) and ``--set``."""
    from ..specs import apply_overrides, load_spec, parse_spec

    if args.file:
        return load_spec(cls, args.file, args.set)
    data = apply_overrides({k: v for k, v in extra.items() if v is not None}, args.set)
    return parse_spec(cls, data, source="command line")


def name_of(args: argparse.Namespace) -> str:
    if getattr(args, "name", None):
        return args.name
    if getattr(args, "file", None):
        from ..specs import read_spec_file

        data = read_spec_file(args.file) or {}
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"])
    raise InvalidSpec("name: give --name (or -f with a spec that has a name)")


def deployment_names(args: argparse.Namespace) -> tuple[str, str]:
    endpoint, name = args.endpoint_name, args.name
    if (not endpoint or not name) and getattr(args, "file", None):
        from ..specs import read_spec_file

        data = read_spec_file(args.file) or {}
        if isinstance(data, dict):
            endpoint, name = endpoint or data.get("endpoint_name"), name or data.get("name")
    if not endpoint or not name:
        raise InvalidSpec("give --endpoint-name and --name (or -f deployment.yml)")
    return endpoint, name


# --- arguments every noun module adds -----------------------------------------------------------


def add_common(p: argparse.ArgumentParser, output: bool = True) -> None:
    p.add_argument("--home", default=None, help="workspace home (default $ENDPOINTS_HOME or ./mlruns)")
    if output:
        p.add_argument("-o", "--output", choices=["table", "json"], default="table")


def add_spec_args(p: argparse.ArgumentParser, deployment: bool = False) -> None:
    p.add_argument("-f", "--file", help="YAML spec")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec field")
    p.add_argument("-n", "--name")
    if deployment:
        p.add_argument("-e", "--endpoint-name")


def add_lookup_verbs(verbs: Any, show: Any, delete: Any, list_: Any, deployment: bool = False) -> None:
    """``show`` and ``delete`` (by ``-n`` or ``-f spec.yml``; a deployment also by ``-e``) and
    ``list`` (a deployment's with ``-e`` required): the same flags for all four nouns."""
    for verb, func in (("show", show), ("delete", delete)):
        p = verbs.add_parser(verb)
        add_common(p)
        p.add_argument("-n", "--name")
        if deployment:
            p.add_argument("-e", "--endpoint-name")
        p.add_argument("-f", "--file")
        p.set_defaults(func=func)
    p = verbs.add_parser("list")
    add_common(p)
    if deployment:
        p.add_argument("-e", "--endpoint-name", required=True)
    p.set_defaults(func=list_)
