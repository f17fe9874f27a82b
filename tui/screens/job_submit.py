"""Submit a batch job: endpoint, input (folder, file, glob or URL), deployment, overrides."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

__all__ = ["JobSubmitScreen", "parse_overrides", "OVERRIDES"]

OVERRIDES = {"mini_batch_size": int, "instance_count": int, "max_retries": int, "timeout": int,
             "error_threshold": int, "output_file_name": str}


def parse_overrides(text: str) -> tuple[dict[str, Any], str | None]:
    """``key=value`` pairs separated by spaces or commas -> (overrides, None) or ({}, the problem)."""
    out: dict[str, Any] = {}
    for item in text.replace(",", " ").split():
        key, sep, raw = item.partition("=")
        if not sep or not raw:
            return {}, f"overrides: {item!r} is not key=value"
        if key not in OVERRIDES:
            return {}, f"overrides: unknown setting {key!r} (one of {', '.join(OVERRIDES)})"
        try:
            out[key] = OVERRIDES[key](raw)
        except ValueError:
            return {}, f"overrides: {key} must be a whole number, got {raw!r}"
    return out, None


class JobSubmitScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [Binding("ctrl+s", "submit", "Submit", priority=True), Binding("escape", "cancel", "Cancel")]

    def __init__(self, endpoints: list[str], endpoint: str | None = None) -> None:
        super().__init__()
        self.endpoints = endpoints
        self.endpoint = endpoint or endpoints[0]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="submit-dialog"):
            yield Label("Submit a batch job", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("endpoint", classes="field-label")
                yield Select([(e, e) for e in self.endpoints], value=self.endpoint, allow_blank=False, id="job-endpoint")
            with Horizontal(classes="field"):
                yield Label("input", classes="field-label")
                yield Input(placeholder="folder, file, glob or URL", id="job-input")
            with Horizontal(classes="field"):
                yield Label("deployment", classes="field-label")
                yield Input(placeholder="(the endpoint's default)", id="job-deployment")
            with Horizontal(classes="field"):
                yield Label("overrides", classes="field-label")
                yield Input(placeholder="mini_batch_size=10 instance_count=2", id="job-overrides")
            yield Static("", id="submit-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Submit (ctrl+s)", id="submit", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.app.apply_cursor_blink(self)  # type: ignore[attr-defined]
        self.query_one("#job-input", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit() if event.button.id == "submit" else self.action_cancel()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        problem = self.query_one("#submit-problem", Static)
        path = self.query_one("#job-input", Input).value.strip()
        if not path:
            problem.update(Text("input: give a folder, file, glob or URL to score", style="bold red3"))
            return
        overrides, why = parse_overrides(self.query_one("#job-overrides", Input).value)
        if why:
            problem.update(Text(why, style="bold red3"))
            return
        request: dict[str, Any] = {"endpoint": self.query_one("#job-endpoint", Select).value, "input": path, **overrides}
        deployment = self.query_one("#job-deployment", Input).value.strip()
        if deployment:
            request["deployment_name"] = deployment
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
