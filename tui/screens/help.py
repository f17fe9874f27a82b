"""F1: every key of every view (the same table as docs/tui.md)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

__all__ = ["HelpScreen", "HELP"]

HELP = """\
# Endpoints TUI keys

| Anywhere | |
|---|---|
| `1` ... `5` | Models, Endpoints, Live, Jobs, Test |
| `ctrl+p` | command palette (every action by name) |
| `F1` | this help |
| `F5` | refresh now |
| `ctrl+q` | quit |
| `tab` / `shift+tab` | next / previous field |
| `esc` | close a dialog or screen |

| Models | |
|---|---|
| `up`/`down` | pick a model version |
| `d` or `enter` | deploy it (the deploy flow) |
| `r` | read the registry again |

| Deploy flow | |
|---|---|
| type | answers update the advice (online or batch) |
| `ctrl+o` / `ctrl+b` | take the online / batch option |
| `ctrl+d` | deploy the settings shown |
| `esc` | back |

| Endpoints | |
|---|---|
| `t` | edit traffic and mirror (`ctrl+s` applies) |
| `l` | follow the deployment's log (`f` pause, `c` clear) |
| `k` | reveal the endpoint's keys or token |
| `v` or `enter` | Live view of the endpoint |
| `s` | Test panel aimed at the endpoint or deployment |
| `d` | delete (asks first) |

| Live | |
|---|---|
| `[` / `]` | previous / next online endpoint |

| Jobs | |
|---|---|
| `n` | submit a job (endpoint, input, overrides) |
| `x` | cancel the selected job |
| `enter` | details: errors per file, output preview |

| Test | |
|---|---|
| `ctrl+s` | send the request |
| `ctrl+r` | reset the request to the model's input example |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
