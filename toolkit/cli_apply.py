"""``endpoints advise --apply``: what the advice would create or change, and applying it safely.

The advice names its endpoint after the model (``churn``), so applying it can land on an endpoint
that already serves traffic.  Before anything changes, the plan lists each resource as created or
updated with the fields that differ and where traffic would move; a change to an existing
resource needs a yes (a prompt in a terminal, ``--yes`` elsewhere), and ``--dry-run`` only shows.
Existing traffic tables are kept when an endpoint is updated: only ``all_traffic`` moves traffic.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import NotFound

__all__ = ["Change", "plan_changes", "touches_live", "apply_changes", "confirm"]

_SKIP = {"name", "endpoint_name", "traffic", "mirror_traffic"}


@dataclass
class Change:
    spec: Any
    kind: str                     # OnlineEndpoint, OnlineDeployment, BatchEndpoint, BatchDeployment
    action: str                   # create | update
    details: list[str] = field(default_factory=list)
    existing: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        words = {"OnlineEndpoint": "online endpoint", "OnlineDeployment": "online deployment",
                 "BatchEndpoint": "batch endpoint", "BatchDeployment": "batch deployment"}[self.kind]
        of = f" of {self.spec.endpoint_name}" if hasattr(self.spec, "endpoint_name") else ""
        return f"{words} {self.spec.name}{of}"

    def describe(self) -> str:
        lines = [f"{self.action} {self.label}"]
        lines += [f"    {d}" for d in self.details]
        return "\n".join(lines)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _diff(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    out = []
    for key, value in new.items():
        if key in _SKIP or value in (None, {}, []) and old.get(key) in (None, {}, []):
            continue
        if old.get(key) != value:
            out.append(f"{key}: {_short(old.get(key))} -> {_short(value)}")
    return out


def _get(getter: Callable[[], Any]) -> dict[str, Any] | None:
    try:
        found = getter()
    except NotFound:
        return None
    return found.to_dict() if hasattr(found, "to_dict") else dict(found)


def _traffic_text(traffic: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(traffic.items()) if v) or "none"


def plan_changes(ws: Any, specs: list[Any]) -> list[Change]:
    """One :class:`Change` per spec, in apply order."""
    changes = []
    for spec in specs:
        kind = type(spec).__name__
        new = spec.to_dict()
        if kind == "OnlineEndpoint":
            old = _get(lambda: ws.online_endpoints.get(spec.name))
        elif kind == "OnlineDeployment":
            old = _get(lambda: ws.online_deployments.get(spec.endpoint_name, spec.name))
        elif kind == "BatchEndpoint":
            old = _get(lambda: ws.batch_endpoints.get(spec.name))
        else:
            old = _get(lambda: ws.batch_deployments.get(spec.endpoint_name, spec.name))
        change = Change(spec, kind, "update" if old else "create", _diff(new, old) if old else [], old)
        if kind == "OnlineEndpoint" and old:
            change.details.append(f"traffic kept: {_traffic_text(old.get('traffic') or {})}")
        if kind == "OnlineDeployment":
            endpoint = _get(lambda: ws.online_endpoints.get(spec.endpoint_name)) or {}
            current = _traffic_text(endpoint.get("traffic") or {})
            if current != f"{spec.name}=100":
                change.details.append(f"traffic of {spec.endpoint_name}: {current} -> {spec.name}=100")
        if kind == "BatchDeployment":
            endpoint = _get(lambda: ws.batch_endpoints.get(spec.endpoint_name)) or {}
            default = (endpoint.get("defaults") or {}).get("deployment_name")
            if endpoint and default != spec.name:
                change.details.append(f"default deployment of {spec.endpoint_name}: {default or 'none'} -> {spec.name}")
        changes.append(change)
    return changes


def touches_live(changes: list[Change]) -> list[str]:
    """What already exists and would change (the reason to ask first)."""
    live = []
    for c in changes:
        if c.action == "update" and c.details:
            live.append(c.label)
        elif c.kind in ("OnlineDeployment", "BatchDeployment") and any(
                d.startswith(("traffic of", "default deployment of")) and " none -> " not in d for d in c.details):
            live.append(c.label)
    return live


def confirm(question: str) -> bool:
    """A yes from a person at a terminal; never a yes without one."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def apply_changes(ws: Any, changes: list[Change], say: Callable[[str], None]) -> None:
    for c in changes:
        spec = c.spec
        if c.kind == "OnlineEndpoint":
            if c.existing:  # keep the live traffic table; only all_traffic below moves traffic
                spec = type(spec).model_validate({**spec.to_dict(), "traffic": c.existing.get("traffic") or {},
                                                  "mirror_traffic": c.existing.get("mirror_traffic") or {}})
            ws.online_endpoints.create_or_update(spec)
        elif c.kind == "OnlineDeployment":
            ws.online_deployments.create_or_update(spec, all_traffic=True)
        elif c.kind == "BatchEndpoint":
            if c.existing and (c.existing.get("defaults") or {}).get("deployment_name"):
                spec = type(spec).model_validate({**spec.to_dict(), "defaults": c.existing["defaults"]})
            ws.batch_endpoints.create_or_update(spec)
        else:
            ws.batch_deployments.create_or_update(spec, set_default=True)
        say(f"applied: {c.action} {c.label}")
