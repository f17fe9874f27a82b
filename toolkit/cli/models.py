"""``endpoints models list | show``: the workspace's MLflow registry."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..entities import format_time
from .common import EXIT_OK, add_common, workspace
from .output import emit, table

__all__ = ["register", "cmd_models_list", "cmd_models_show"]


def cmd_models_list(args: argparse.Namespace) -> int:
    models = [m.to_dict() for m in workspace(args, start=False).models.list()]

    def human(ms: list[dict[str, Any]]) -> str:
        rows = []
        for m in ms:
            for v in m["versions"]:
                rows.append({"name": m["name"], "version": v["version"], "aliases": v["aliases"],
                             "flavors": v.get("flavors"), "signature": "yes" if v.get("signature") else "no",
                             "created": format_time(v["created_at"])})
        return table(rows, ["name", "version", "aliases", "flavors", "signature", "created"])

    emit(args, models, human)
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    m = workspace(args, start=False).models.get(args.name).to_dict()

    def human(d: dict[str, Any]) -> str:
        out = [f"{d['name']}: {d['description'] or ''}".rstrip(": "), f"aliases: {d['aliases'] or '-'}"]
        for v in d["versions"]:
            out.append(f"\nversion {v['version']}  aliases={v['aliases'] or '-'}  flavors={v.get('flavors')}  source={v['source']}")
            sig = v.get("signature") or {}
            inputs = json.loads(sig["inputs"]) if isinstance(sig.get("inputs"), str) else sig.get("inputs")
            if inputs:
                out.append("  inputs:  " + ", ".join(f"{c.get('name')}:{c.get('type')}" for c in inputs))
            outputs = json.loads(sig["outputs"]) if isinstance(sig.get("outputs"), str) else sig.get("outputs")
            if outputs:
                out.append("  outputs: " + ", ".join(f"{c.get('name', '-')}:{c.get('type')}" for c in outputs))
            out.append(f"  input example: {'yes' if v.get('has_input_example') else 'no'}")
        return "\n".join(out)

    emit(args, m, human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="registry models").add_subparsers(dest="verb", required=True)
    p = models.add_parser("list")
    add_common(p)
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show")
    add_common(p)
    p.add_argument("name")
    p.set_defaults(func=cmd_models_show)
