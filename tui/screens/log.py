"""The live tail of a deployment's log: the last 64 KiB, then what is appended, every second."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label, RichLog

__all__ = ["LogScreen"]


class LogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("c", "clear", "Clear"),
    ]

    def __init__(self, endpoint: str, deployment: str, interval: float = 1.0) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.deployment = deployment
        self.interval = interval
        self.offset: int | None = None
        self.follow = True
        self._busy = False

    def compose(self) -> ComposeResult:
        yield Label(f"log of {self.endpoint}/{self.deployment} (following)", id="log-title", classes="screen-title")
        yield RichLog(id="log", max_lines=5000, wrap=False, highlight=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.tick()
        self.set_interval(self.interval, self.tick)

    def tick(self) -> None:
        app: Any = self.app
        if not self._busy and app.ws is not None:
            self._busy = True
            self.fetch(app.ws)

    @work(thread=True, group="log", exit_on_error=False)
    def fetch(self, ws: Any) -> None:
        from toolkit.errors import ToolkitError

        try:
            chunk = ws.online_deployments.log_tail(self.endpoint, self.deployment, offset=self.offset)
        except ToolkitError as err:
            self.app.call_from_thread(self._failed, str(err))
            return
        self.app.call_from_thread(self._append, chunk)

    def _failed(self, message: str) -> None:
        self._busy = False
        self.query_one("#log-title", Label).update(f"log of {self.endpoint}/{self.deployment}: {message}")

    def _append(self, chunk: Any) -> None:
        self._busy = False
        self.offset = chunk.offset
        if chunk.text:
            log = self.query_one("#log", RichLog)
            for line in chunk.text.rstrip("\n").split("\n"):
                log.write(line, scroll_end=self.follow)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        state = "following" if self.follow else "paused; f follows"
        self.query_one("#log-title", Label).update(f"log of {self.endpoint}/{self.deployment} ({state})")

    def action_clear(self) -> None:
        self.query_one("#log", RichLog).clear()

    def action_close(self) -> None:
        self.dismiss(None)
