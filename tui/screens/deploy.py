"""The deploy flow: the advisor's questions as a form, the advice updating as the answers change,
the proposed settings (editable), then deploy with progress while instances start."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, RadioButton, RadioSet, Static

from ..format import money
from .deploy_plan import WORKLOAD_FIELDS, DeployPlan, workload_from_form

__all__ = ["DeployScreen"]

ADVISE_DELAY_S = 0.6  # wait for a pause in typing before asking the advisor again


def _field(label: str, input_id: str, value: str = "", placeholder: str = "", tooltip: str = "") -> Horizontal:
    field = Horizontal(Label(label, classes="field-label"),
                       Input(value, placeholder=placeholder, id=input_id, classes="field-input"), classes="field")
    if tooltip:
        field.tooltip = tooltip
    return field


class DeployScreen(Screen[bool]):
    """Dismissed with True once something was deployed."""

    BINDINGS = [
        Binding("ctrl+d", "deploy", "Deploy", priority=True),
        Binding("ctrl+o", "option('online')", "Online"),
        Binding("ctrl+b", "option('batch')", "Batch"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, model_uri: str, model: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model_uri = model_uri
        self.model = model or {}
        self.advice: Any = None
        self.option = "online"
        self.settings_touched = False
        self._filled: dict[str, str] = {}
        self._advise_seq = 0
        self._timer: Timer | None = None
        self.deploying = False

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Label(Text.assemble("Deploy ", (self.model_uri, "bold")), classes="screen-title")
        with Horizontal(id="deploy-body"):
            with VerticalScroll(id="deploy-form"):
                yield Label("How is it used?", classes="section")
                for key, (label, default, placeholder, tip) in WORKLOAD_FIELDS.items():
                    yield _field(label, f"w-{key}", default, placeholder, tip)
                yield Label("Settings", classes="section")
                with RadioSet(id="d-option"):
                    yield RadioButton("online", value=True, id="opt-online")
                    yield RadioButton("batch", id="opt-batch")
                yield _field("endpoint", "s-endpoint", placeholder="endpoint name")
                yield _field("deployment", "s-deployment", placeholder="deployment name")
                yield _field("type", "s-instance_type", "cpu-small", "cpu-nano ... cpu-xlarge")
                yield _field("instances", "s-count", "1", "instances or workers")
                yield _field("batch rows", "s-rows", "", "rows per batch")
                yield Button("Deploy (ctrl+d)", id="deploy", variant="success")
            with Vertical(id="deploy-side"):
                yield VerticalScroll(Static(Text("asking the advisor...", style="dim"), id="advice"), id="advice-box")
                yield Static("", id="deploy-progress")
        yield Footer()

    def on_mount(self) -> None:
        self.app.apply_cursor_blink(self)  # type: ignore[attr-defined]
        name = (self.model.get("name") or self.model_uri.split("/")[-2] if "/" in self.model_uri else "model")
        self._fill({"s-endpoint": f"{name}-ep", "s-deployment": f"{name}-v{self.model_uri.rsplit('/', 1)[-1]}"})
        self.query_one("#w-frequency", Input).focus()
        self.ask_advisor()

    # --- the advice -----------------------------------------------------------------------------
    def form(self) -> dict[str, str]:
        return {key: self.query_one(f"#w-{key}", Input).value for key in WORKLOAD_FIELDS}

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id is None or self._filled.get(event.input.id) == event.value:
            return  # a value this screen filled in, not the user's edit
        if event.input.id.startswith("w-"):
            if self._timer is not None:
                self._timer.stop()
            self._timer = self.set_timer(ADVISE_DELAY_S, self.ask_advisor)
        elif event.input.id.startswith("s-") and event.input.has_focus:
            self.settings_touched = True  # typed by the user (values set by the screen arrive unfocused)

    def ask_advisor(self) -> None:
        workload, problem = workload_from_form(self.model_uri, self.form())
        if problem:
            self.show_problem(problem)
            return
        app: Any = self.app
        if app.ws is None:
            self.show_problem("not connected to a host: the advisor runs on the host")
            return
        self._advise_seq += 1
        if self.advice is None:
            self.query_one("#advice", Static).update(
                Text("measuring the model (the first time takes a few seconds)...", style="dim"))
        self.fetch_advice(app.ws, workload, self._advise_seq)

    @work(thread=True, group="advise", exit_on_error=False)
    def fetch_advice(self, ws: Any, workload: dict[str, Any], seq: int) -> None:
        from toolkit.errors import ToolkitError

        try:
            advice = ws.advise(**workload)
        except ToolkitError as err:
            self.app.call_from_thread(self._advice_failed, str(err), seq)
            return
        self.app.call_from_thread(self._advice_ready, advice, seq)

    def _advice_failed(self, message: str, seq: int) -> None:
        if seq == self._advise_seq:
            self.show_problem(message)

    def show_problem(self, message: str) -> None:
        self.query_one("#advice", Static).update(Text.assemble(("✗ ", "bold red3"), (message, "red3")))

    def _advice_ready(self, advice: Any, seq: int) -> None:
        if seq != self._advise_seq:  # answers to older questions are dropped
            return
        self.advice = advice
        self.query_one("#advice", Static).update(render_advice(advice))
        if not self.settings_touched:
            self.take_option(advice.recommendation)

    def take_option(self, option: str) -> None:
        """Fill the settings from the advice's ``option`` (until the user edits them)."""
        self.option = option
        self.query_one(f"#opt-{option}", RadioButton).value = True
        plan = DeployPlan.from_advice(self.advice, option, self.model_uri) if self.advice else None
        if plan is not None:
            self._fill({"s-endpoint": plan.endpoint, "s-deployment": plan.deployment,
                        "s-instance_type": plan.instance_type, "s-count": str(plan.count),
                        "s-rows": str(plan.batch_rows or "")})

    def _fill(self, values: dict[str, str]) -> None:
        for input_id, value in values.items():
            self._filled[input_id] = value
            self.query_one(f"#{input_id}", Input).value = value

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        chosen = "batch" if event.pressed.id == "opt-batch" else "online"
        if chosen != self.option:
            self.option = chosen
            if self.advice is not None:
                self.settings_touched = False
                self.take_option(chosen)

    def action_option(self, option: str) -> None:
        self.query_one(f"#opt-{option}", RadioButton).value = True
        self.option = option
        if self.advice is not None:
            self.settings_touched = False
            self.take_option(option)

    # --- deploy ---------------------------------------------------------------------------------
    def plan(self) -> tuple[DeployPlan | None, str | None]:
        values = {key: self.query_one(f"#s-{key}", Input).value for key in
                  ("endpoint", "deployment", "instance_type", "count", "rows")}
        return DeployPlan.from_form(self.option, self.model_uri, values)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "deploy":
            self.action_deploy()

    def action_deploy(self) -> None:
        app: Any = self.app
        if self.deploying:
            self.app.notify("a deployment is already under way", severity="warning")
            return
        plan, problem = self.plan()
        if problem or plan is None:
            self.progress(Text(f"✗ {problem}", style="bold red3"))
            self.app.notify(problem or "invalid settings", title="deploy", severity="error")
            return
        if app.ws is None:
            self.app.notify("not connected to a host", severity="error")
            return
        self.deploying = True
        self.query_one("#deploy", Button).disabled = True
        self.progress(Text(f"creating {plan.option} endpoint {plan.endpoint}...", style="dark_orange3"))
        self.run_deploy(app.ws, plan)

    def progress(self, text: Any) -> None:
        self.query_one("#deploy-progress", Static).update(text)

    @work(thread=True, group="deploy", exit_on_error=False)
    def run_deploy(self, ws: Any, plan: DeployPlan) -> None:
        from toolkit.errors import ToolkitError

        def on_progress(status: Any) -> None:
            ready = sum(1 for i in status.instances if i.ready)
            self.app.call_from_thread(self.progress, Text(
                f"{status.name}: {status.state}, instances ready {ready}/{status.instance_count}", style="dark_orange3"))

        try:
            message = plan.apply(ws, self.advice, on_progress)
        except ToolkitError as err:
            self.app.call_from_thread(self._deploy_failed, str(err))
            return
        except Exception as err:  # shown, never a traceback
            self.app.call_from_thread(self._deploy_failed, f"{type(err).__name__}: {err}")
            return
        self.app.call_from_thread(self._deployed, plan, message)

    def _deploy_failed(self, message: str) -> None:
        self.deploying = False
        self.query_one("#deploy", Button).disabled = False
        self.progress(Text(f"✗ {message}", style="bold red3"))
        self.app.notify(message, title="deploy failed", severity="error", timeout=10)

    def _deployed(self, plan: DeployPlan, message: str) -> None:
        self.deploying = False
        self.app.notify(message, title="deployed")
        app: Any = self.app
        self.dismiss(True)
        app.poll()
        app.action_view("jobs" if plan.option == "batch" else "endpoints")

    def action_back(self) -> None:
        if self.deploying:
            self.app.notify("the deployment goes on in the background; its state shows in Endpoints")
        self.dismiss(False)


def render_advice(advice: Any) -> Group:
    """The recommendation, the deciding question, the reasons and both options."""
    from toolkit.advisor import QUESTIONS

    cur = advice.workload.prices.currency
    parts: list[Any] = [
        Text.assemble(("→ ", "bold"), (advice.recommendation.upper(), "bold reverse green4"), "  ", advice.summary),
        Text.assemble(("deciding: ", "bold"), QUESTIONS[advice.deciding_question]),
        Text(""),
    ]
    for reason in advice.reasons:
        mark, style = ("★", "bold") if reason.deciding else ("·", "")
        parts.append(Text.assemble((f"{mark} ", style), (f"{reason.question}: ", "dim"), (reason.text, style)))
    parts.append(Text(""))
    for row in advice.table():
        head = ("▶ " if row["recommended"] else "  ") + row["option"]
        if not row["feasible"]:
            parts.append(Text.assemble((head, "bold"), ("  not feasible: " + row["why_not"], "red3")))
            continue
        per_run = f"  {money(row['cost_per_run'], cur)}/run" if row["cost_per_run"] is not None else ""
        parts.append(Text.assemble((head, "bold green4" if row["recommended"] else "bold"), "  ", row["configuration"]))
        parts.append(Text.assemble("    ", row["expected"], ("  " + money(row["cost_per_month"], cur) + "/month", "bold"),
                                   per_run))
    for warning in advice.warnings:
        parts.append(Text(f"! {warning}", style="dark_orange3"))
    if advice.what_would_change:
        parts.append(Text(""))
        parts.append(Text("what would change it", style="bold"))
        for change in advice.what_would_change[:3]:
            parts.append(Text(f"· {getattr(change, 'text', change)}", style="dim"))
    return Group(*parts)
