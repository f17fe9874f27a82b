"""Applying specs (or an advisor's recommendation) to a workspace, with a plan first.

``Workspace.apply(...)`` returns an :class:`ApplyPlan`: each resource it would create or update,
the fields that differ and where traffic or the default batch deployment would move.  A UI (or
the CLI's ``advise --apply``) shows the plan and asks before changing what already serves
(:attr:`ApplyPlan.live`), then applies that same plan, so what was confirmed is what changes.

The advice names its endpoint after the model (``churn``), so applying it can land on an endpoint
that already serves traffic.  Existing traffic tables and batch defaults are kept when an endpoint
is updated: only the deployment (``all_traffic`` / ``set_default``) moves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import InvalidSpec, NotFound

__all__ = ["Change", "ApplyPlan", "plan_changes", "apply_plan", "specs_of"]

_SKIP = {"name", "endpoint_name", "traffic", "mirror_traffic"}
_KINDS = ("OnlineEndpoint", "OnlineDeployment", "BatchEndpoint", "BatchDeployment")


@dataclass
class Change:
    """One resource the plan creates or updates."""

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

    @property
    def touches_live(self) -> bool:
        """Whether this changes something that already exists (the reason to ask first)."""
        if self.action == "update" and self.details:
            return True
        return self.kind in ("OnlineDeployment", "BatchDeployment") and any(
            d.startswith(("traffic of", "default deployment of")) and " none -> " not in d for d in self.details)

    def describe(self) -> str:
        lines = [f"{self.action} {self.label}"]
        lines += [f"    {d}" for d in self.details]
        return "\n".join(lines)


@dataclass
class ApplyPlan:
    """What applying would do, in order; ``applied`` says whether it was carried out."""

    changes: list[Change]
    applied: bool = False

    @property
    def live(self) -> list[str]:
        """Labels of the existing resources that would change."""
        return [c.label for c in self.changes if c.touches_live]

    def describe(self) -> str:
        return "\n".join(c.describe() for c in self.changes)

    def __repr__(self) -> str:
        return f"<ApplyPlan {'applied' if self.applied else 'not applied'}>\n{self.describe()}"


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


def specs_of(target: Any) -> list[Any]:
    """The specs to apply from an Advice (``to_specs()``), one spec, or a list of specs."""
    if hasattr(target, "to_specs"):
        return list(target.to_specs())
    specs = list(target) if isinstance(target, (list, tuple)) else [target]
    for spec in specs:
        if type(spec).__name__ not in _KINDS:
            raise InvalidSpec(f"cannot apply a {type(spec).__name__}: pass an Advice, or OnlineEndpoint, "
                              "OnlineDeployment, BatchEndpoint or BatchDeployment specs")
    return specs


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


def apply_plan(ws: Any, plan: ApplyPlan, on_applied: Callable[[Change], None] | None = None) -> ApplyPlan:
    """Carry out ``plan`` in order; ``on_applied(change)`` after each resource is done."""
    for c in plan.changes:
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
        if on_applied is not None:
            on_applied(c)
    plan.applied = True
    return plan
