"""How the CLI prints: JSON for ``-o json``, else tables and ``key value`` lines for people."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable, Sequence

from ..entities import format_time

__all__ = ["emit", "table", "kv", "show_with_events", "job_human"]


def _plain(data: Any) -> Any:
    return data.to_dict() if hasattr(data, "to_dict") else data


def emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str] | None = None) -> None:
    """Print ``data`` as JSON (``-o json``, or when there is no human form), else ``human(data)``."""
    if isinstance(data, list):
        data = [_plain(d) for d in data]
    else:
        data = _plain(data)
    if getattr(args, "output", "table") == "json" or human is None:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human(data))


def table(rows: list[dict[str, Any]], cols: Sequence[str]) -> str:
    if not rows:
        return "(none)"

    def cell(v: Any) -> str:
        if isinstance(v, dict):
            return " ".join(f"{k}={x}" for k, x in v.items()) or "-"
        if isinstance(v, list):
            return ",".join(map(str, v)) or "-"
        return "-" if v in (None, "") else str(v)

    grid = [[c.upper() for c in cols]] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in grid) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in grid)


def kv(data: dict[str, Any], skip: Sequence[str] = ()) -> str:
    lines = []
    for k, v in data.items():
        if k in skip:
            continue
        if k.endswith("_at"):
            v = format_time(v)
        if isinstance(v, (dict, list)):
            v = json.dumps(v, default=str)
        lines.append(f"{k:<22} {v}")
    return "\n".join(lines)


def show_with_events(data: dict[str, Any]) -> str:
    out = kv(data, skip=("events", "instances"))
    if data.get("instances"):
        out += "\n\ninstances:\n" + table(data["instances"], [c for c in ("id", "state", "pid", "restarts", "rss_mib", "cpu_percent") if any(c in i for i in data["instances"])])
    if data.get("events"):
        out += "\n\nevents:\n" + "\n".join(
            f"  {format_time(e['ts'])}  {e['reason']:<22} {e['message']}" for e in data["events"]
        )
    return out


def job_human(d: dict[str, Any]) -> str:
    out = kv({k: v for k, v in d.items() if k != "spec"})
    failed_files = (d.get("progress") or {}).get("failed_files") or 0
    if d.get("state") == "Completed" and failed_files:
        out += f"\nwarning                {failed_files} file(s) failed; see the error logs in {d.get('output')}"
    return out
