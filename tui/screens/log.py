"""The live tail of a deployment's log: the last 64 KiB, then what is appended, every second."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label, RichLog

__all__ = ["LogScreen"]

READ_BYTES = 65536


class LogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("c", "clear", "Clear"),
        Binding("i", "next_instance", "Instance"),
    ]

    def __init__(self, endpoint: str, deployment: str, interval: float = 1.0) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.deployment = deployment
        self.interval = interval
        self.log_offset: int | None = None
        self.log_instance: str | None = None
        self.instances: list[str] = []
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

        offset, instance = self.log_offset, self.log_instance
        try:
            for _ in range(8):  # catch up in a few reads when much was appended since the last tick
                chunk = ws.online_deployments.log_tail(self.endpoint, self.deployment, instance=instance,
                                                        offset=offset, max_bytes=READ_BYTES)
                self.app.call_from_thread(self._append, chunk)
                offset, instance = chunk.offset, chunk.instance
                if len(chunk.text.encode()) < READ_BYTES:
                    break
        except ToolkitError as err:
            self.app.call_from_thread(self._failed, str(err))
            return
        self.app.call_from_thread(self._done)

    def _failed(self, message: str) -> None:  # shown in the title; the next tick tries again
        self._busy = False
        self.query_one("#log-title", Label).update(f"log of {self.endpoint}/{self.deployment}: {message}")

    def _done(self) -> None:
        self._busy = False

    def _append(self, chunk: Any) -> None:
        if self.log_instance is not None and chunk.instance not in (None, self.log_instance):
            return  # an answer for the instance we just switched away from
        self.log_offset = chunk.offset
        self.log_instance = chunk.instance
        if chunk.instances != self.instances:
            self.instances = list(chunk.instances)
            self._title()
        if chunk.text:
            log = self.query_one("#log", RichLog)
            for line in chunk.text.rstrip("\n").split("\n"):
                log.write(line, scroll_end=self.follow)

    def _title(self) -> None:
        state = "following" if self.follow else "paused; f follows"
        which = f" instance {self.log_instance}" if self.log_instance else ""
        others = f" (i: {len(self.instances)} instances)" if len(self.instances) > 1 else ""
        self.query_one("#log-title", Label).update(f"log of {self.endpoint}/{self.deployment}{which}, {state}{others}")

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self._title()

    def action_next_instance(self) -> None:
        if len(self.instances) < 2:
            return
        i = self.instances.index(self.log_instance) if self.log_instance in self.instances else -1
        self.log_instance = self.instances[(i + 1) % len(self.instances)]
        self.log_offset = None
        self.query_one("#log", RichLog).clear()
        self._title()

    def action_clear(self) -> None:
        self.query_one("#log", RichLog).clear()

    def action_close(self) -> None:
        self.dismiss(None)
