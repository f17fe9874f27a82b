"""Credentials of an endpoint, shown only when asked for and only on this screen."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

__all__ = ["CredentialsScreen"]


class CredentialsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,k", "close", "Close")]

    def __init__(self, endpoint: str, credentials: dict[str, Any]) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.credentials = credentials

    def compose(self) -> ComposeResult:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        for key, value in self.credentials.items():
            grid.add_row(key, str(value))
        if self.credentials.get("auth_mode") == "none":
            grid.add_row("", "this endpoint needs no credentials")
        with Vertical(classes="dialog", id="credentials-dialog"):
            yield Label(f"Credentials of {self.endpoint}", classes="dialog-title")
            yield Static(grid)
            yield Label("Send as: Authorization: Bearer <key or token>.  esc closes.", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
