"""Test panel: send the model's input example (editable) to an endpoint or one deployment, and see
the answer, who served it, the status code and the latency."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Select, Static, TextArea

from .base import DataView, run_on_host
from .models_view import example_for

__all__ = ["TestPanel", "find_version"]

ANY_DEPLOYMENT = "(by traffic)"


def find_version(models: list[dict[str, Any]], uri: str | None) -> dict[str, Any] | None:
    """The version record a ``models:/name/version`` or ``models:/name@alias`` URI points at."""
    if not uri or not uri.startswith("models:/"):
        return None
    rest = uri[len("models:/"):]
    name, _, ref = rest.partition("@") if "@" in rest else rest.partition("/")
    for model in models:
        if model.get("name") != name:
            continue
        version = (model.get("aliases") or {}).get(ref, ref) if "@" in rest else ref
        for v in model.get("versions", []):
            if str(v.get("version")) == str(version):
                return v
    return None


class TestPanel(DataView):
    BINDINGS = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("ctrl+r", "reset", "Example", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._endpoints: list[str] = []
        self._deployments: list[str] = []
        self._aimed: tuple[str, str | None] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="test-target"):
            yield Select([], prompt="endpoint", id="test-endpoint", allow_blank=True)
            yield Select([], prompt=ANY_DEPLOYMENT, id="test-deployment", allow_blank=True)
        yield TextArea("", id="test-request", language=None, soft_wrap=True, show_line_numbers=False)
        yield Static(Text("ctrl+s sends the request; ctrl+r resets it to the model's input example", style="dim"),
                     id="test-response")

    def on_mount(self) -> None:
        self.app.apply_cursor_blink(self)

    def focus_main(self) -> None:
        self.query_one("#test-request", TextArea).focus()

    # --- targets --------------------------------------------------------------------------------
    def update_view(self) -> None:
        snap = self.app.snapshot
        names = [e.name for e in snap.online_endpoints] if snap else []
        sel = self.query_one("#test-endpoint", Select)
        if names != self._endpoints:
            current = sel.value
            self._endpoints = names
            sel.set_options([(n, n) for n in names])
            if current in names:
                sel.value = current
            elif names and self._aimed is None:
                sel.value = names[0]
        if self._aimed is not None and self._aimed[0] in names:
            endpoint, deployment = self._aimed
            self._aimed = None
            sel.value = endpoint
            self._fill_deployments(endpoint, deployment)
            self.action_reset()
        else:
            self._fill_deployments(self.endpoint())

    def endpoint(self) -> str | None:
        value = self.query_one("#test-endpoint", Select).value
        return value if isinstance(value, str) else None

    def deployment(self) -> str | None:
        value = self.query_one("#test-deployment", Select).value
        return value if isinstance(value, str) else None

    def _status(self, endpoint: str | None) -> Any:
        snap = self.app.snapshot
        for ep in snap.online_endpoints if snap else []:
            if ep.name == endpoint:
                return ep
        return None

    def _fill_deployments(self, endpoint: str | None, choose: str | None = None) -> None:
        ep = self._status(endpoint)
        names = [d.name for d in ep.deployments] if ep else []
        sel = self.query_one("#test-deployment", Select)
        if names != self._deployments:
            current = sel.value
            self._deployments = names
            sel.set_options([(n, n) for n in names])
            if current in names:
                sel.value = current
        if choose in names:
            sel.value = choose

    def aim(self, endpoint: str, deployment: str | None = None) -> None:
        """Point the panel at ``endpoint`` (and one deployment) with its model's input example."""
        self._aimed = (endpoint, deployment)
        self.update_view()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "test-endpoint":
            self._fill_deployments(self.endpoint())
            if not self.query_one("#test-request", TextArea).text.strip():
                self.action_reset()

    # --- request --------------------------------------------------------------------------------
    def example(self) -> dict[str, Any] | None:
        ep = self._status(self.endpoint())
        if ep is None:
            return None
        wanted = self.deployment()
        deps = [d for d in ep.deployments if d.name == wanted] or sorted(ep.deployments, key=lambda d: -d.traffic)
        for dep in deps:
            version = find_version(self.app.models, dep.model)
            if version is not None:
                return example_for(version)
        return None

    def action_reset(self) -> None:
        example = self.example()
        area = self.query_one("#test-request", TextArea)
        if example is None:
            self.app.notify("no input example for this endpoint's model; type the request", severity="warning")
            return
        area.text = json.dumps(example)

    def action_send(self) -> None:
        response = self.query_one("#test-response", Static)
        endpoint = self.endpoint()
        if endpoint is None:
            response.update(Text("pick an endpoint first", style="bold red3"))
            return
        raw = self.query_one("#test-request", TextArea).text
        try:
            data = json.loads(raw)
        except ValueError as err:
            response.update(Text(f"request: not valid JSON ({err})", style="bold red3"))
            return
        if not self.need_host():
            return
        deployment = self.deployment()
        response.update(Text(f"sending to {endpoint}{'/' + deployment if deployment else ''}...", style="dim"))
        run_on_host(self, self.ws.online_endpoints.invoke_raw, endpoint, data, deployment_name=deployment,
                    title="test", done=self.show_result,
                    failed=lambda err: response.update(Text(str(err), style="bold red3")))

    def show_result(self, result: Any) -> None:
        ok = result.status_code < 400
        head = Text.assemble(
            ("status ", "dim"), (str(result.status_code), "bold green4" if ok else "bold red3"),
            ("  served by ", "dim"), (result.deployment or "-", "bold dodger_blue3"),
            ("  latency ", "dim"), (f"{result.latency_ms:.1f} ms", "bold"),
            ("  request ", "dim"), (result.request_id or "-", ""),
        )
        body = result.body
        text = json.dumps(body) if not isinstance(body, (str, bytes)) else (
            body.decode(errors="replace") if isinstance(body, bytes) else body)
        self.query_one("#test-response", Static).update(Group(head, Text(text[:2000], overflow="fold")))
