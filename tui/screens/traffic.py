"""The traffic editor: live and mirror percentages per deployment, checked on every keystroke."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..traffic import parse_percent, traffic_problems

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.views import EndpointStatus

__all__ = ["TrafficScreen"]


class TrafficScreen(ModalScreen[tuple[str, dict[str, int], dict[str, int]] | None]):
    """Dismissed with (endpoint, traffic, mirror) when applied, None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, endpoint: "EndpointStatus") -> None:
        super().__init__()
        self.endpoint = endpoint
        self.names = [d.name for d in endpoint.deployments]

    def compose(self) -> ComposeResult:
        with Vertical(id="traffic-dialog", classes="dialog"):
            yield Label(Text.assemble("Traffic of ", (self.endpoint.name, "bold")), classes="dialog-title")
            with Grid(id="traffic-grid"):
                yield Label("deployment", classes="th")
                yield Label("live %", classes="th")
                yield Label("mirror %", classes="th")
                for i, name in enumerate(self.names):
                    yield Label(name)
                    yield Input(str(self.endpoint.traffic.get(name, 0)), id=f"t{i}", type="integer",
                                max_length=3, classes="pct")
                    yield Input(str(self.endpoint.mirror_traffic.get(name, 0)), id=f"m{i}", type="integer",
                                max_length=3, classes="pct")
            yield Static("", id="traffic-problems")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply (ctrl+s)", id="apply", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.app.apply_cursor_blink(self)  # type: ignore[attr-defined]
        self.check()
        self.query_one("#t0", Input).focus()

    def read(self) -> tuple[dict[str, int], dict[str, int], list[str]]:
        traffic: dict[str, int] = {}
        mirror: dict[str, int] = {}
        problems: list[str] = []
        for i, name in enumerate(self.names):
            for prefix, table, label in (("t", traffic, "live"), ("m", mirror, "mirror")):
                value, problem = parse_percent(self.query_one(f"#{prefix}{i}", Input).value, f"{label} {name}")
                if problem:
                    problems.append(problem)
                else:
                    table[name] = value or 0
        if not problems:
            problems = traffic_problems(traffic, mirror)
        return traffic, mirror, problems

    def check(self) -> list[str]:
        traffic, _, problems = self.read()
        box = self.query_one("#traffic-problems", Static)
        if problems:
            box.update(Text("\n".join(f"✗ {p}" for p in problems), style="bold red3"))
        else:
            total = sum(traffic.values())
            box.update(Text(f"✓ live traffic sums to {total}%; ctrl+s applies it", style="green4"))
        self.query_one("#apply", Button).disabled = bool(problems)
        return problems

    def on_input_changed(self, _: Input.Changed) -> None:
        self.check()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.action_apply()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_apply() if event.button.id == "apply" else self.action_cancel()

    def action_apply(self) -> None:
        traffic, mirror, problems = self.read()
        if problems:
            self.check()
            self.app.notify(problems[0], title="traffic not applied", severity="error")
            return
        self.dismiss((self.endpoint.name, traffic, {k: v for k, v in mirror.items() if v}))

    def action_cancel(self) -> None:
        self.dismiss(None)


