"""The deploy flow's logic without widgets: form -> workload, advice/form -> a plan, plan -> host.

Kept apart from the screen so the rules (which field is wrong, what gets created) read plainly
and the screen only wires inputs to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["WORKLOAD_FIELDS", "workload_from_form", "DeployPlan"]

# form key -> (label, default, placeholder, help); the keys are the advisor's workload fields
WORKLOAD_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "frequency": ("how often", "per request", "per request | hourly | every 1 week",
                  "How often are predictions needed? 'per request' or a schedule"),
    "peak_rps": ("peak req/s", "10", "requests/s at peak", "Peak arrival rate (per request workloads)"),
    "avg_rps": ("avg req/s", "2", "requests/s on average", "Average arrival rate"),
    "latency_ms": ("latency ms", "200", "p99 target in ms", "How soon: latency target of one request"),
    "deadline": ("deadline", "", "e.g. 12h", "How soon: results needed within this time"),
    "rows_per_request": ("rows/request", "1", "rows in one request", "One at a time or in batches?"),
    "rows_per_run": ("rows/run", "", "e.g. 480", "Rows scored by one scheduled run"),
    "hours_per_day": ("hours/day", "24", "hours the endpoint is up", "Hours a day an online endpoint must be up"),
    "core_hour": ("$ core-hour", "0.04048", "price of a core for an hour", "Price of one core for one hour"),
    "gib_hour": ("$ GiB-hour", "0.004445", "price of a GiB for an hour", "Price of one GiB of memory for one hour"),
}

_NUMBERS = {"peak_rps": float, "avg_rps": float, "latency_ms": float, "rows_per_request": int, "rows_per_run": int,
            "hours_per_day": float, "core_hour": float, "gib_hour": float}
_ON_ARRIVAL = ("per request", "on request", "on arrival", "on event", "per event", "each event", "on each event")


def workload_from_form(model: str, form: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The advisor's workload keywords from the form's text, or the first field that is wrong."""
    out: dict[str, Any] = {"model": model}
    prices: dict[str, float] = {}
    frequency = form.get("frequency", "").strip()
    if not frequency:
        return {}, "how often: say 'per request' or a schedule such as 'every 1 week'"
    out["frequency"] = frequency
    scheduled = frequency.lower() not in _ON_ARRIVAL
    for key, text in form.items():
        text = text.strip()
        if key == "frequency" or not text:
            continue
        if scheduled and key in ("peak_rps", "avg_rps", "latency_ms", "rows_per_request"):
            continue  # the request-rate answers do not apply to a schedule
        if not scheduled and key == "rows_per_run":
            continue
        if key == "deadline":
            out["deadline"] = text
            continue
        try:
            value = _NUMBERS[key](text)
        except ValueError:
            kind = "a whole number" if _NUMBERS[key] is int else "a number"
            return {}, f"{WORKLOAD_FIELDS[key][0]}: {text!r} is not {kind}"
        if key in ("core_hour", "gib_hour"):
            prices[key] = value
        else:
            out[key] = value
    if scheduled and "rows_per_run" not in out:
        return {}, "rows/run: a schedule needs the rows scored by one run"
    if not scheduled and "latency_ms" not in out and "deadline" not in out:
        return {}, "latency ms: a per-request workload needs a latency target (or a deadline)"
    if prices:
        out["prices"] = prices
    return out, None


@dataclass(frozen=True)
class DeployPlan:
    """What the deploy button creates: one endpoint and one deployment of ``model``."""

    option: str  # "online" | "batch"
    model: str
    endpoint: str
    deployment: str
    instance_type: str
    count: int
    batch_rows: int | None = None

    @classmethod
    def from_advice(cls, advice: Any, option: str, model: str) -> "DeployPlan":
        endpoint, deployment = advice.names(option)
        opt = advice.option(option)
        if option == "online":
            return cls(option, model, endpoint, deployment, opt.instance_type, max(1, opt.instance_count),
                       opt.max_batch_size)
        return cls(option, model, endpoint, deployment, opt.instance_type, max(1, opt.workers), opt.mini_batch_rows)

    @classmethod
    def from_form(cls, option: str, model: str, values: dict[str, str]) -> tuple["DeployPlan | None", str | None]:
        from toolkit.specs import INSTANCE_TYPES

        endpoint, deployment = values["endpoint"].strip(), values["deployment"].strip()
        if not endpoint:
            return None, "endpoint: give the endpoint a name"
        if not deployment:
            return None, "deployment: give the deployment a name"
        itype = values["instance_type"].strip()
        if itype not in INSTANCE_TYPES:
            return None, f"type: unknown instance type {itype!r}; choose one of {', '.join(INSTANCE_TYPES)}"
        try:
            count = int(values["count"])
            if count < 1:
                raise ValueError
        except ValueError:
            return None, f"instances: {values['count']!r} must be a whole number of at least 1"
        rows_text = values["rows"].strip()
        try:
            rows = int(rows_text) if rows_text else None
            if rows is not None and rows < 1:
                raise ValueError
        except ValueError:
            return None, f"batch rows: {rows_text!r} must be a whole number of at least 1"
        return cls(option, model, endpoint, deployment, itype, count, rows), None

    # --- host -------------------------------------------------------------------------------------
    def specs(self, advice: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Endpoint and deployment specs as dicts: the advice's tuned specs when there is one,
        with the user's edits on top; the host validates them and names a wrong field."""
        if advice is not None:
            ep_spec, dep_spec = (s.to_dict() for s in advice.to_specs(
                self.option, endpoint_name=self.endpoint, deployment_name=self.deployment))
        else:
            ep_spec = {"name": self.endpoint}
            dep_spec = {"name": self.deployment, "endpoint_name": self.endpoint, "model": self.model}
        dep_spec["model"] = self.model
        if self.option == "online":
            dep_spec["instance_type"] = self.instance_type
            dep_spec["instance_count"] = self.count
            scale = dep_spec.get("scale_settings") or {}
            if scale.get("max_instances") is not None:
                scale["max_instances"] = max(self.count, scale.get("min_instances") or 1)
            if self.batch_rows:
                dep_spec.setdefault("batching", {})["max_batch_size"] = self.batch_rows
        else:
            dep_spec.setdefault("resources", {})["instance_count"] = self.count
            if self.batch_rows:
                dep_spec["mini_batch_rows"] = self.batch_rows
        return ep_spec, dep_spec

    def apply(self, ws: Any, advice: Any, on_progress: Callable[[Any], None] | None = None) -> str:
        """Create the endpoint (if new) and the deployment; wait for an online one to succeed and
        give it all traffic when the endpoint had none.  Returns what happened, in words."""
        ep_spec, dep_spec = self.specs(advice)
        if self.option == "batch":
            if not _exists(ws.batch_endpoints.get, self.endpoint):
                ws.batch_endpoints.create_or_update(ep_spec)
            ws.batch_deployments.create_or_update(dep_spec, set_default=True)
            return f"batch deployment {self.endpoint}/{self.deployment} is ready; n in Jobs submits a job"
        if not _exists(ws.online_endpoints.get, self.endpoint):
            ws.online_endpoints.create_or_update(ep_spec)
        ws.online_deployments.create_or_update(dep_spec, wait=False)
        ws.online_deployments.wait(self.endpoint, self.deployment, timeout=300, on_progress=on_progress)
        endpoint = ws.online_endpoints.get(self.endpoint)
        if not sum((endpoint.get("traffic") or {}).values()):
            ws.online_endpoints.update_traffic(self.endpoint, {self.deployment: 100})
            return f"{self.endpoint}/{self.deployment} Succeeded and takes all traffic"
        return f"{self.endpoint}/{self.deployment} Succeeded (0% traffic: t in Endpoints shifts traffic)"


def _exists(get: Callable[[str], Any], name: str) -> bool:
    from toolkit.errors import NotFound

    try:
        get(name)
    except NotFound:
        return False
    return True
