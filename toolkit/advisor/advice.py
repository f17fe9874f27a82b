"""The answer: recommendation, reasons, both options side by side, what would change it, and
the specs to deploy it.  Plain data (pydantic), so the host can send it as JSON and the SDK can
rebuild the same object (``Advice.from_dict``) with its ``__repr__``, ``_repr_html_`` and
``to_specs``."""

from __future__ import annotations

import html
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..specs import (
    Batching,
    BatchDeployment,
    BatchEndpoint,
    BatchResources,
    OnlineDeployment,
    OnlineEndpoint,
    RequestSettings,
    RetrySettings,
    ScaleSettings,
    Spec,
)
from ..errors import InvalidSpec
from .decision import QUESTIONS, Change, Reason
from .profile import ModelProfile
from .sizing import Assumptions, BatchOption, OnlineOption, Question
from .workload import Workload

__all__ = ["Advice", "Options", "summary_of"]

Option = Literal["online", "batch"]


class Options(BaseModel):
    online: OnlineOption
    batch: BatchOption


def _slug(text: str, limit: int = 32) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    s = re.sub(r"-{2,}", "-", s)
    if not s or not s[0].isalpha():
        s = f"m-{s}".rstrip("-")
    if len(s) < 3:
        s = f"{s}-ep"
    return s[:limit].rstrip("-")


class Advice(BaseModel):
    """Online or batch for one model and workload, with the numbers behind it."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="The model as asked for (may be an alias).")
    model_uri: str = Field(description="The concrete version that was profiled.")
    recommendation: Option
    deciding_question: Question
    summary: str
    reasons: list[Reason]
    options: Options
    what_would_change: list[Change] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    workload: Workload
    profile: ModelProfile
    assumptions: Assumptions = Field(default_factory=Assumptions)

    # --- access -------------------------------------------------------------------------------
    @property
    def recommended(self) -> OnlineOption | BatchOption:
        return self.option(self.recommendation)

    def option(self, kind: Option) -> OnlineOption | BatchOption:
        if kind not in ("online", "batch"):
            raise InvalidSpec(f"option: {kind!r} must be 'online' or 'batch'")
        return self.options.online if kind == "online" else self.options.batch

    def table(self) -> list[dict[str, Any]]:
        """Both options side by side (what the widgets and the TUI show)."""
        rows = []
        for kind in ("online", "batch"):
            o = self.option(kind)  # type: ignore[arg-type]
            rows.append({
                "option": kind, "recommended": kind == self.recommendation, "feasible": o.feasible,
                "configuration": o.configuration, "expected": o.expected,
                "cost_per_run": getattr(o, "cost_per_run", None), "cost_per_month": o.cost_per_month,
                "why_not": o.why_not,
            })
        return rows

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ``-o json`` shape (also the control plane's answer)."""
        d = self.model_dump(mode="json")
        d["question"] = QUESTIONS[self.deciding_question]
        d["table"] = self.table()
        d["profile"] = self.profile.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Advice":
        return cls.model_validate(data)

    # --- specs ----------------------------------------------------------------------------------
    def names(self, option: Option | None = None) -> tuple[str, str]:
        """(endpoint name, deployment name) the specs use."""
        endpoint = _slug(self.workload.name or self.profile.name)
        deployment = _slug(f"{self.profile.name}-v{self.profile.version}")
        return endpoint, deployment

    def to_specs(self, option: Option | None = None, *, endpoint_name: str | None = None,
                 deployment_name: str | None = None) -> list[Spec]:
        """[OnlineEndpoint, OnlineDeployment] or [BatchEndpoint, BatchDeployment] of the recommended
        option (or of ``option``), sized as advised, ready for ``create_or_update`` in that order.

        The deployment names the profiled version (``models:/name/version``), not an alias: the
        numbers were measured on that version.  Give the online deployment all traffic
        (``all_traffic=True``) and make the batch deployment the default (``set_default=True``).
        """
        kind = option or self.recommendation
        opt = self.option(kind)
        ep_default, dep_default = self.names(kind)
        ep, dep = endpoint_name or ep_default, deployment_name or dep_default
        label = f"{self.profile.name} v{self.profile.version}"
        why = f"advised {kind} for {label}: {opt.configuration}"
        tags = {"advisor": kind, "advisor.workload": str(self.workload.frequency)}
        if isinstance(opt, OnlineOption):
            scale = ScaleSettings()
            count = max(1, opt.instance_count)
            if opt.min_instances < count:
                scale = ScaleSettings(type="target_utilization", min_instances=opt.min_instances, max_instances=count,
                                      target_utilization_percentage=int(round(self.assumptions.max_utilization * 100)))
            # The request timeout must outlast the slowest request the sizing expects, with margin.
            timeout_ms = max(RequestSettings().request_timeout_ms,
                             int(math.ceil(4 * (opt.latency_ms or 0) / 1000)) * 1000 if opt.latency_ms and not math.isinf(opt.latency_ms) else 0)
            return [
                OnlineEndpoint(name=ep, description=why, tags=tags),
                OnlineDeployment(
                    name=dep, endpoint_name=ep, model=self.profile.model_uri, description=why,
                    instance_type=opt.instance_type, instance_count=count, scale_settings=scale,
                    batching=Batching(max_batch_size=opt.max_batch_size, max_batch_wait_ms=0.0),
                    request_settings=RequestSettings(request_timeout_ms=min(timeout_ms, 600_000)),
                    tags={**tags, "advisor.latency_ms": f"{opt.latency_ms:.1f}" if opt.latency_ms and not math.isinf(opt.latency_ms) else "-"},
                ),
            ]
        assert isinstance(opt, BatchOption)
        per_task = self.profile.latency_at(opt.mini_batch_rows) / 1000
        return [
            BatchEndpoint(name=ep, description=why, tags=tags),
            BatchDeployment(
                name=dep, endpoint_name=ep, model=self.profile.model_uri, description=why,
                resources=BatchResources(instance_count=max(1, opt.workers)), max_concurrency_per_instance=1,
                mini_batch_size=1, mini_batch_rows=opt.mini_batch_rows,
                # A mini-batch gets ten times its predicted time (and at least the default) before it is retried.
                retry_settings=RetrySettings(timeout=max(RetrySettings().timeout, int(math.ceil(10 * per_task + 5)))),
                tags={**tags, "advisor.duration_s": f"{opt.expected_duration_s or 0:.1f}"},
            ),
        ]

    def apply(self, ws: Any, option: Option | None = None, **names: str) -> list[Any]:
        """Deploy :meth:`to_specs` through an SDK workspace (what ``endpoints advise --apply`` does)."""
        out = []
        for spec in self.to_specs(option, **names):
            if isinstance(spec, OnlineEndpoint):
                out.append(ws.online_endpoints.create_or_update(spec))
            elif isinstance(spec, OnlineDeployment):
                out.append(ws.online_deployments.create_or_update(spec, all_traffic=True))
            elif isinstance(spec, BatchEndpoint):
                out.append(ws.batch_endpoints.create_or_update(spec))
            elif isinstance(spec, BatchDeployment):
                out.append(ws.batch_deployments.create_or_update(spec, set_default=True))
        return out

    # --- display --------------------------------------------------------------------------------
    def __repr__(self) -> str:
        cur = self.workload.prices.format
        lines = [
            f"Advice for {self.model} ({self.profile.name} v{self.profile.version}): {self.recommendation.upper()}",
            f"  {self.summary}",
            f"  Deciding question: {QUESTIONS[self.deciding_question]} ({self.deciding_question})",
            "  Reasons:",
        ]
        for r in self.reasons:
            lines.append(f"    {'*' if r.deciding else '-'} [{r.question}] {r.text}")
        lines.append("  Options:")
        rows = [("option", "configuration", "expected", "per run", "per month")]
        for t in self.table():
            mark = "> " if t["recommended"] else "  "
            rows.append((
                mark + t["option"], t["configuration"] if t["feasible"] else f"not feasible: {t['why_not']}",
                t["expected"] if t["feasible"] else "-",
                cur(t["cost_per_run"]) if t["cost_per_run"] is not None and t["feasible"] else "-",
                cur(t["cost_per_month"]) if t["feasible"] else "-",
            ))
        widths = [min(max(len(r[i]) for r in rows), 70) for i in range(5)]
        for r in rows:
            lines.append("    " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if self.what_would_change:
            lines.append("  What would change the answer:")
            lines += [f"    - {c.text}" for c in self.what_would_change]
        if self.warnings:
            lines.append("  Warnings:")
            lines += [f"    ! {w}" for w in self.warnings]
        p = self.profile
        lines.append(f"  Profile: load {p.load_s:.2f} s (+{p.import_s:.2f} s imports), {p.rss_mib:,.0f} MiB, "
                     f"predict 1 row {p.latency_at(1):.1f} ms, {p.best_rows:,} rows {p.latency_at(p.best_rows):.1f} ms "
                     f"({'cached' if p.from_cache else 'measured'} on {p.cpu_count} CPUs)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        cur = self.workload.prices.format
        head = (f"<p><b>{e(self.recommendation.upper())}</b> for <code>{e(self.model)}</code> "
                f"({e(self.profile.name)} v{e(self.profile.version)}). {e(self.summary)}</p>")
        reasons = "".join(
            f"<li>{'<b>' if r.deciding else ''}[{e(r.question)}] {e(r.text)}{'</b>' if r.deciding else ''}</li>"
            for r in self.reasons
        )
        body = []
        for t in self.table():
            style = ' style="font-weight:bold"' if t["recommended"] else ""
            cfg = e(t["configuration"]) if t["feasible"] else f"<i>not feasible: {e(t['why_not'])}</i>"
            per_run = cur(t["cost_per_run"]) if t["cost_per_run"] is not None and t["feasible"] else "-"
            per_month = cur(t["cost_per_month"]) if t["feasible"] else "-"
            body.append(f"<tr{style}><td>{e(t['option'])}{' (recommended)' if t['recommended'] else ''}</td>"
                        f"<td>{cfg}</td><td>{e(t['expected']) if t['feasible'] else '-'}</td>"
                        f"<td>{e(per_run)}</td><td>{e(per_month)}</td></tr>")
        table = ("<table><thead><tr><th>option</th><th>configuration</th><th>expected</th><th>cost per run</th>"
                 f"<th>cost per month</th></tr></thead><tbody>{''.join(body)}</tbody></table>")
        changes = "".join(f"<li>{e(c.text)}</li>" for c in self.what_would_change)
        warn = "".join(f"<li>{e(w)}</li>" for w in self.warnings)
        return (
            f"<div class='endpoints-advice'>{head}<p>Deciding question: <b>{e(QUESTIONS[self.deciding_question])}</b></p>"
            f"<ul>{reasons}</ul>{table}"
            + (f"<p>What would change the answer:</p><ul>{changes}</ul>" if changes else "")
            + (f"<p>Warnings:</p><ul>{warn}</ul>" if warn else "")
            + "</div>"
        )


def summary_of(rec: Option, q: Question, opt: OnlineOption | BatchOption, w: Workload) -> str:
    cur = w.prices.format
    if isinstance(opt, OnlineOption):
        what = (f"an online endpoint with {opt.configuration}: ~{opt.expected}, {cur(opt.cost_per_month)}/month"
                if opt.feasible else f"an online endpoint, although it misses the target ({opt.why_not})")
    else:
        what = (f"batch jobs with {opt.configuration}: ~{opt.expected}, {cur(opt.cost_per_run)} a run, "
                f"{cur(opt.cost_per_month)}/month" if opt.feasible
                else f"batch jobs, although they miss the deadline ({opt.why_not})")
    return f"Use {what}. Decided by: {QUESTIONS[q].lower().rstrip('?')}."
