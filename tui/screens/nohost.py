"""Shown when no host runs for the workspace: say so, and offer to start one."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, Static

__all__ = ["NoHostScreen"]


class NoHostScreen(Screen[None]):
    BINDINGS = [
        Binding("s", "start", "Start a host"),
        Binding("r", "retry", "Retry"),
        Binding("f1", "app.help", "Help"),
    ]

    def __init__(self, home: Path, reason: str) -> None:
        super().__init__()
        self.home = home
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Center():
            with Vertical(id="nohost", classes="dialog"):
                yield Label("No host is running", classes="dialog-title", id="nohost-title")
                yield Static(Text.assemble("workspace ", (str(self.home), "bold")))
                yield Static(Text(self.reason, style="dim"), id="nohost-reason")
                yield Static("Start one here (the same as `endpoints up`), or run `endpoints up` "
                             "in another terminal and retry.")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Start a host (s)", id="start", variant="primary")
                    yield Button("Retry (r)", id="retry")
                    yield Button("Quit (ctrl+q)", id="quit")
        yield Footer()

    def show_reason(self, reason: str) -> None:
        self.query_one("#nohost-reason", Static).update(Text(reason, style="red3"))
        self.query_one("#start", Button).disabled = False
        self.query_one("#retry", Button).disabled = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"start": self.action_start, "retry": self.action_retry, "quit": self.app.exit}[event.button.id or "quit"]()

    def action_start(self) -> None:
        self.query_one("#nohost-reason", Static).update(Text("starting a host...", style="dark_orange3"))
        self.query_one("#start", Button).disabled = True
        self.app.connect(start=True)  # type: ignore[attr-defined]

    def action_retry(self) -> None:
        self.query_one("#nohost-reason", Static).update(Text("looking for a host...", style="dark_orange3"))
        self.app.connect(start=False)  # type: ignore[attr-defined]
