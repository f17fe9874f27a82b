"""``DeployWizard``: pick a registry model, answer the advisor's four questions, read the advice
(live as the answers change), and deploy the chosen option with one click."""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets

from ..advisor.workload import DEFAULT_PRICES
from ..specs import INSTANCE_TYPES, BatchDeployment, OnlineDeployment, ScaleSettings
from ._base import Panel, esc, table_html
from ._live import model_example
from .charts import CostCurve
from .deploy import DeployResult, deploy_specs

__all__ = ["DeployWizard", "NEED_SWEEP_S"]

# How soon results are needed, for the cost chart (seconds): 100 ms to 1 week.
NEED_SWEEP_S = (0.1, 0.5, 2.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 604800.0)
SCHEDULES = [("every minute", "every 1 minute"), ("hourly", "hourly"), ("daily", "daily"),
             ("weekly", "every 1 week"), ("monthly", "monthly"), ("quarterly", "every 3 months")]
_W = {"description_width": "150px"}


def _h(text: str) -> widgets.HTML:
    return widgets.HTML(f"<div class='endpoints-h'>{esc(text)}</div>")


def _lay(width: str = "320px") -> widgets.Layout:
    return widgets.Layout(width=width)


class DeployWizard(Panel):
    """The advisor's decision made interactive, then a one-click deployment.

    ``model``: a registered model name or a ``models:/name/version`` / ``models:/name@alias`` URI
    to start on.  ``wizard.advice`` is the latest :class:`~toolkit.advisor.Advice`;
    ``wizard.result`` what the deploy button created.
    """

    def __init__(self, ws: Any, model: str | None = None, *, sweep: bool = True) -> None:
        super().__init__(ws)
        self.advice: Any = None
        self.result: DeployResult | None = None
        self.sweep = sweep
        self._generation = 0
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._worker: threading.Thread | None = None
        self._deploy_thread: threading.Thread | None = None
        self._models: dict[str, dict[str, Any]] = {}
        self._auto_names: dict[int, str] = {}

        # 1. model
        self.model_name = widgets.Dropdown(description="Model", style=_W, layout=_lay())
        self.version = widgets.Dropdown(description="Version or alias", style=_W, layout=_lay())
        self.model_info = widgets.HTML()
        # 2. the four questions
        self.frequency = widgets.ToggleButtons(
            options=[("as each event arrives", "on_arrival"), ("on a schedule", "scheduled")],
            description="How often", style={**_W, "button_width": "170px"})
        self.peak_rps = widgets.BoundedFloatText(20.0, min=0, max=1e6, description="peak requests/s", style=_W, layout=_lay())
        self.avg_rps = widgets.BoundedFloatText(5.0, min=0, max=1e6, description="average requests/s", style=_W, layout=_lay())
        self.latency_ms = widgets.BoundedFloatText(200.0, min=1, max=3.6e6, description="p99 latency target ms", style=_W, layout=_lay())
        self.rows_per_request = widgets.BoundedIntText(1, min=1, max=10**6, description="rows per request", style=_W, layout=_lay())
        self.schedule = widgets.Dropdown(options=SCHEDULES, value="every 1 week", description="runs", style=_W, layout=_lay())
        self.deadline = widgets.Text("12h", description="results within", placeholder="e.g. 30 min, 12h, 2 days", style=_W, layout=_lay())
        self.rows_per_run = widgets.BoundedIntText(480, min=1, max=10**10, description="rows per run", style=_W, layout=_lay())
        self.hours_per_day = widgets.IntSlider(24, min=1, max=24, description="hours up a day", style=_W, layout=_lay("420px"))
        self.core_hour = widgets.BoundedFloatText(DEFAULT_PRICES.core_hour, min=0, max=1000, step=0.001, description="$ per core-hour", style=_W, layout=_lay())
        self.gib_hour = widgets.BoundedFloatText(DEFAULT_PRICES.gib_hour, min=0, max=1000, step=0.0001, description="$ per GiB-hour", style=_W, layout=_lay())
        self.arrival_box = widgets.VBox([self.peak_rps, self.avg_rps, self.latency_ms, self.rows_per_request])
        self.schedule_box = widgets.VBox([self.schedule, self.deadline, self.rows_per_run])
        # 3. advice
        self.status = widgets.HTML()
        self.advice_html = widgets.HTML(layout=widgets.Layout(width="52%"))
        self.cost = CostCurve()
        # 4. deploy
        self.option = widgets.ToggleButtons(options=[("online endpoint", "online"), ("batch jobs", "batch")],
                                            description="Deploy as", style={**_W, "button_width": "150px"})
        self.endpoint_name = widgets.Text(description="endpoint name", style=_W, layout=_lay())
        self.deployment_name = widgets.Text(description="deployment name", style=_W, layout=_lay())
        self.instance_type = widgets.Dropdown(options=list(INSTANCE_TYPES), description="instance type", style=_W, layout=_lay())
        self.instance_count = widgets.BoundedIntText(1, min=1, max=100, description="instances", style=_W, layout=_lay())
        self.autoscale = widgets.Checkbox(False, description="autoscale (target utilisation)", indent=False)
        self.min_instances = widgets.BoundedIntText(1, min=0, max=100, description="min instances", style=_W, layout=_lay())
        self.max_batch_size = widgets.BoundedIntText(64, min=1, max=65536, description="micro-batch rows", style=_W, layout=_lay())
        self.workers = widgets.BoundedIntText(1, min=1, max=1000, description="workers", style=_W, layout=_lay())
        self.mini_batch_rows = widgets.BoundedIntText(4096, min=1, max=10**8, description="mini-batch rows", style=_W, layout=_lay())
        self.online_box = widgets.VBox([self.instance_type, self.instance_count, self.autoscale, self.min_instances, self.max_batch_size])
        self.batch_box = widgets.VBox([self.workers, self.mini_batch_rows])
        self.deploy_button = widgets.Button(description="Deploy", button_style="success", icon="rocket", disabled=True,
                                            tooltip="Create the endpoint and deployment shown")
        self.progress = widgets.IntProgress(0, min=0, max=1, layout=widgets.Layout(width="300px", visibility="hidden"))
        self.progress_label = widgets.HTML()
        self.result_box = widgets.VBox()

        self.children = [
            self._style, self.error,
            _h("1. Model"), widgets.HBox([self.model_name, self.version]), self.model_info,
            _h("2. How the predictions are used"), self.frequency,
            widgets.HBox([widgets.VBox([self.arrival_box, self.schedule_box]),
                          widgets.VBox([self.hours_per_day, self.core_hour, self.gib_hour])]),
            _h("3. Advice"), self.status, widgets.HBox([self.advice_html, self.cost.figure]),
            _h("4. Deploy"), self.option,
            widgets.HBox([widgets.VBox([self.endpoint_name, self.deployment_name]), self.online_box, self.batch_box]),
            widgets.HBox([self.deploy_button, self.progress, self.progress_label]), self.result_box,
        ]
        self._show_frequency()
        self._show_option()
        self.guard(self._load_models)(model)
        self.model_name.observe(self.guard(self._on_model), names="value")
        self.version.observe(self.guard(self._on_version), names="value")
        self.frequency.observe(lambda _: self._show_frequency(), names="value")
        self.option.observe(lambda _: self._show_option(), names="value")
        self.autoscale.observe(lambda _: self._show_option(), names="value")
        for w in (self.frequency, self.peak_rps, self.avg_rps, self.latency_ms, self.rows_per_request, self.schedule,
                  self.deadline, self.rows_per_run, self.hours_per_day, self.core_hour, self.gib_hour):
            w.observe(lambda _: self.request_advice(), names="value")
        self.deploy_button.on_click(self.guard(lambda _: self._start_deploy()))
        if self.version.value:
            self.request_advice()

    # --- step 1 ----------------------------------------------------------------------------------
    def _load_models(self, model: str | None) -> None:
        self._models = {m["name"]: m.to_dict() for m in self.ws.models.list()}
        name, wanted = None, None
        if model:
            name = model.removeprefix("models:/").split("/")[0].split("@")[0]
            wanted = model if model.startswith("models:/") else None
        self.model_name.options = sorted(self._models) or ([name] if name else [])
        if name and name not in self.model_name.options:
            self.model_name.options = [*self.model_name.options, name]
        if name:
            self.model_name.value = name
        self._fill_versions(wanted)

    def _fill_versions(self, wanted: str | None = None) -> None:
        m = self._models.get(self.model_name.value or "", {})
        opts = [(f"@{alias} (v{v})", f"models:/{m['name']}@{alias}") for alias, v in sorted((m.get("aliases") or {}).items())]
        opts += [(f"v{v['version']}", f"models:/{m['name']}/{v['version']}")
                 for v in sorted(m.get("versions") or [], key=lambda v: -int(v["version"]) if str(v["version"]).isdigit() else 0)]
        if wanted and wanted not in [o[1] for o in opts]:
            # Not in the registry as listed: keep it, so the host says what is wrong with it.
            opts.append((wanted.removeprefix("models:/"), wanted))
        self.version.options = opts
        self.version.value = wanted or (opts[0][1] if opts else None)
        self._show_model()

    def _on_model(self, _change: Any) -> None:
        self._fill_versions()

    def _on_version(self, _change: Any) -> None:
        self._show_model()
        self.request_advice()

    def _version_info(self) -> dict[str, Any]:
        m = self._models.get(self.model_name.value or "", {})
        uri = self.version.value or ""
        ref = uri.removeprefix(f"models:/{m.get('name')}").lstrip("/")
        number = (m.get("aliases") or {}).get(ref[1:]) if ref.startswith("@") else ref
        return next((v for v in m.get("versions") or [] if str(v["version"]) == str(number)), {})

    def _show_model(self) -> None:
        m = self._models.get(self.model_name.value or "", {})
        v = self._version_info()
        if not v:
            self.model_info.value = "<span class='endpoints-muted'>no such version in the registry</span>"
            return
        inputs = ((v.get("signature") or {}).get("inputs")) or []
        if isinstance(inputs, str):
            import json

            inputs = json.loads(inputs)
        sig = table_html([{"column": c.get("name"), "type": c.get("type")} for c in inputs if isinstance(c, dict)])
        ex = model_example(v)
        example = table_html([dict(zip(ex["columns"], row)) for row in ex["data"][:3]]) if ex else "-"
        algo = (v.get("tags") or {}).get("algorithm", "")
        self.model_info.value = (
            f"<div><b>{esc(m.get('name', ''))}</b> v{esc(str(v.get('version')))} "
            f"<span class='endpoints-muted'>{esc(algo)} {esc(m.get('description') or '')}</span>"
            f"<div style='display:flex;gap:18px;overflow-x:auto'><div><i>signature</i>{sig}</div>"
            f"<div><i>input example</i>{example}</div></div></div>")

    # --- step 2 -> 3 -------------------------------------------------------------------------------
    def _show_frequency(self) -> None:
        arrival = self.frequency.value == "on_arrival"
        self.arrival_box.layout.display = None if arrival else "none"
        self.schedule_box.layout.display = "none" if arrival else None

    def workload(self) -> dict[str, Any]:
        """The workload the controls describe (``ws.advise`` keywords)."""
        w: dict[str, Any] = {"model": self.version.value, "hours_per_day": float(self.hours_per_day.value),
                             "prices": {"core_hour": self.core_hour.value, "gib_hour": self.gib_hour.value}}
        if self.frequency.value == "on_arrival":
            w.update(frequency="per request", peak_rps=self.peak_rps.value, latency_ms=self.latency_ms.value,
                     rows_per_request=self.rows_per_request.value)
            if self.avg_rps.value:
                w["avg_rps"] = self.avg_rps.value
        else:
            w.update(frequency=self.schedule.value, rows_per_run=self.rows_per_run.value)
            if self.deadline.value.strip():
                w["deadline"] = self.deadline.value.strip()
        return w

    def request_advice(self) -> None:
        """Recompute the advice in the background (coalescing quick successive changes)."""
        self._generation += 1
        self._dirty.set()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._advise_loop, name="deploy-wizard-advice", daemon=True)
            self._worker.start()

    def _advise_loop(self) -> None:
        while not self._closed.is_set():
            if not self._dirty.wait(0.5):
                continue
            time.sleep(0.25)  # let a burst of keystrokes settle
            self._dirty.clear()
            self.advise_now()

    def wait_advice(self, timeout: float = 180.0) -> Any:
        """Block until the advice matches the current answers (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._dirty.is_set() and self._done_generation == self._generation and not self._busy:
                return self.advice
            time.sleep(0.1)
        raise TimeoutError("the advice did not arrive in time")

    _done_generation = -1
    _busy = False

    def advise_now(self) -> Any:
        """Compute the advice for the current answers now; shows it (or the host's error)."""
        generation = self._generation
        self._busy = True
        try:
            return self.guard(self._advise)(generation)
        finally:
            self._done_generation = generation
            self._busy = False

    def _advise(self, generation: int) -> Any:
        if not self.version.value:
            raise ValueError("pick a registered model first")
        self.status.value = "<span class='endpoints-muted'>computing the advice (the first time for a version, " \
                            "the model is measured: a few seconds)...</span>"
        workload = self.workload()
        try:
            advice = self.ws.advise(**workload)
        except Exception:
            self.status.value = ""
            self.deploy_button.disabled = True
            raise
        if generation != self._generation:
            return advice  # answers changed meanwhile: the next round shows its own advice
        self.advice = advice
        self.advice_html.value = self._advice_html(advice)
        self._fill_settings(advice)
        self.deploy_button.disabled = False
        p = advice.profile
        self.status.value = (f"<span class='endpoints-muted'>{esc(p.name)} v{esc(str(p.version))} profiled "
                             f"({'cached' if p.from_cache else 'measured now'}): load {p.load_s:.1f} s, "
                             f"{p.rss_mib:,.0f} MiB, predict 1 row {p.latency_at(1):.1f} ms</span>")
        if self.sweep:
            self._sweep(workload, generation)
        return advice

    def _advice_html(self, a: Any) -> str:
        cur = a.workload.prices.format
        cards = []
        for row in a.table():
            rec = row["recommended"]
            if row["feasible"]:
                body = (f"{esc(row['configuration'])}<br>{esc(row['expected'])}<br><b>{esc(cur(row['cost_per_month']))}"
                        "</b> a month" + (f" ({esc(cur(row['cost_per_run']))} a run)" if row["cost_per_run"] else ""))
            else:
                body = f"<i>does not meet the need: {esc(row['why_not'])}</i>"
            cards.append(f"<div class='endpoints-card{' recommended' if rec else ''}' style='flex:1'>"
                         f"<b>{esc(row['option'])}</b>{' ✔ recommended' if rec else ''}<br>{body}</div>")
        reasons = "".join(f"<li>{'<b>' if r.deciding else ''}{esc(r.text)}{'</b>' if r.deciding else ''}</li>"
                          for r in a.reasons)
        changes = "".join(f"<li>{esc(c.text)}</li>" for c in a.what_would_change)
        warnings = "".join(f"<li>{esc(w)}</li>" for w in a.warnings)
        from ..advisor import QUESTIONS

        return (f"<div style='font-size:13px'><div style='font-size:16px'>Recommendation: <b>{esc(a.recommendation.upper())}</b>"
                f"</div><div>Decided by: <b>{esc(QUESTIONS[a.deciding_question])}</b></div>"
                f"<div style='display:flex'>{''.join(cards)}</div><div>Why:</div><ul style='margin:0'>{reasons}</ul>"
                + (f"<div>What would change the answer:</div><ul style='margin:0'>{changes}</ul>" if changes else "")
                + (f"<div class='endpoints-error'><ul style='margin:0'>{warnings}</ul></div>" if warnings else "")
                + "</div>")

    def _sweep(self, workload: dict[str, Any], generation: int) -> None:
        """Cost of both options against how soon results are needed; the flip is where the
        recommendation changes.  The profile is cached on the host, so each point is quick."""
        points = []
        base = {k: v for k, v in workload.items() if k not in ("latency_ms", "deadline")}
        period = None
        if base["frequency"] != "per request":
            from ..advisor.workload import parse_frequency

            period = parse_frequency(base["frequency"]).period_s
        current = (workload["latency_ms"] / 1000) if "latency_ms" in workload else self.advice.workload.need_s
        needs = sorted({s for s in NEED_SWEEP_S if period is None or s <= period} | {current})
        for need in needs:
            if generation != self._generation or self._closed.is_set():
                return
            w = dict(base)
            if base["frequency"] == "per request" and need < 5:
                w["latency_ms"] = need * 1000
            else:
                w["deadline"] = f"{need}s"
            try:
                a = self.ws.advise(**w)
            except Exception:
                continue  # a point the advisor refuses is left out of the curve
            points.append({"need_s": need, "recommendation": a.recommendation,
                           "online": a.options.online.cost_per_month if a.options.online.feasible else None,
                           "batch": a.options.batch.cost_per_month if a.options.batch.feasible else None})
        if generation == self._generation:
            self.flips = self.cost.update(points, current)

    flips: list[float] = []

    # --- step 4 -------------------------------------------------------------------------------------
    def _show_option(self) -> None:
        online = self.option.value == "online"
        self.online_box.layout.display = None if online else "none"
        self.batch_box.layout.display = "none" if online else None
        self.min_instances.layout.display = None if self.autoscale.value else "none"

    def _fill_settings(self, a: Any) -> None:
        self.option.value = a.recommendation
        # Names follow the advice until the user types their own.
        for box, name in zip((self.endpoint_name, self.deployment_name), a.names()):
            if not box.value or box.value == self._auto_names.get(id(box)):
                box.value = name
                self._auto_names[id(box)] = name
        on, b = a.options.online, a.options.batch
        self.instance_type.value = on.instance_type
        self.instance_count.value = max(1, on.instance_count)
        self.autoscale.value = on.min_instances < on.instance_count
        self.min_instances.value = on.min_instances
        self.max_batch_size.value = on.max_batch_size
        self.workers.value = max(1, b.workers)
        self.mini_batch_rows.value = b.mini_batch_rows

    def specs(self) -> list[Any]:
        """The endpoint and deployment specs the deploy button creates: the advised ones with the
        settings as edited."""
        if self.advice is None:
            raise ValueError("no advice yet: answer the questions first")
        kind = self.option.value
        ep, dep = self.advice.to_specs(kind, endpoint_name=self.endpoint_name.value.strip() or None,
                                       deployment_name=self.deployment_name.value.strip() or None)
        if isinstance(dep, OnlineDeployment):
            count = self.instance_count.value
            scale = ScaleSettings()
            if self.autoscale.value:
                scale = ScaleSettings(type="target_utilization", min_instances=min(self.min_instances.value, count),
                                      max_instances=count, target_utilization_percentage=int(round(self.advice.assumptions.max_utilization * 100)))
            dep = dep.model_copy(update={
                "instance_type": self.instance_type.value, "instance_count": count, "scale_settings": scale,
                "batching": dep.batching.model_copy(update={"max_batch_size": self.max_batch_size.value})})
        elif isinstance(dep, BatchDeployment):
            dep = dep.model_copy(update={
                "resources": dep.resources.model_copy(update={"instance_count": self.workers.value}),
                "mini_batch_rows": self.mini_batch_rows.value})
        # Re-validate the edited copies (model_copy skips validation): errors name the field.
        return [type(ep).model_validate(ep.model_dump()), type(dep).model_validate(dep.model_dump())]

    def _start_deploy(self) -> None:
        if self._deploy_thread is not None and self._deploy_thread.is_alive():
            raise RuntimeError("a deployment is already in progress")
        specs = self.specs()
        self.deploy_button.disabled = True
        self.result_box.children = []
        self.progress.layout.visibility = "visible"
        self._deploy_thread = self.in_background(lambda: self._deploy(specs), "deploy-wizard-deploy")

    def _deploy(self, specs: list[Any]) -> None:
        try:
            self.result = deploy_specs(self.ws, specs, self._on_progress)
            self.progress.value = self.progress.max
            self.progress_label.value = "<span class='endpoints-ok'>deployed</span>"
            self.result_box.children = self.result.widgets()
        except Exception:
            self.progress_label.value = ""
            raise
        finally:
            self.deploy_button.disabled = False

    def _on_progress(self, text: str, done: int, total: int) -> None:
        self.progress.max = max(1, total)
        self.progress.value = min(done, self.progress.max)
        self.progress_label.value = esc(text)

    def wait_deployed(self, timeout: float = 300.0) -> "DeployResult | None":
        """Block until the deploy button's work ends (for scripts and tests)."""
        if self._deploy_thread is not None:
            self._deploy_thread.join(timeout)
        return self.result

    def close(self) -> None:
        self._closed.set()
        self._dirty.set()
        super().close()
