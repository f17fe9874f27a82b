"""F1: every key of every view (the same table as docs/tui.md)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "SECTIONS", "help_markdown"]

SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    ('Anywhere', [
        ('1 ... 5', 'Models, Endpoints, Live, Jobs, Test'),
        ('ctrl+p', 'command palette (every action by name)'),
        ('F1', 'this help'),
        ('F5', 'refresh now'),
        ('ctrl+q', 'quit'),
        ('tab / shift+tab', 'next / previous field'),
        ('esc', 'close a dialog or screen'),
    ]),
    ('Models', [
        ('up/down', 'pick a model version'),
        ('d or enter', 'deploy it (the deploy flow)'),
        ('r', 'read the registry again'),
    ]),
    ('Deploy flow', [
        ('type', 'answers update the advice (online or batch)'),
        ('ctrl+o / ctrl+b', 'take the online / batch option'),
        ('ctrl+d', 'deploy the settings shown'),
        ('esc', 'back'),
    ]),
    ('Endpoints', [
        ('t', 'edit traffic and mirror (ctrl+s applies)'),
        ('l', "follow the deployment's log (f pauses, c clears, i instance)"),
        ('k', "reveal the endpoint's keys or token"),
        ('v or enter', 'Live view of the endpoint'),
        ('s', 'Test panel aimed at the endpoint or deployment'),
        ('d', 'delete (asks first)'),
    ]),
    ('Live', [
        ('[ / ]', 'previous / next online endpoint'),
    ]),
    ('Jobs', [
        ('n', 'submit a job (endpoint, input, overrides)'),
        ('x', 'cancel the selected job'),
        ('enter', 'details: errors per file, output preview'),
    ]),
    ('Test', [
        ('ctrl+s', 'send the request'),
        ('ctrl+r', "reset the request to the model's input example"),
    ]),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Text("Endpoints TUI keys  (esc closes)", style="bold"))
            for title, rows in SECTIONS:
                table = Table(title=title, title_justify="left", title_style="bold", show_header=False,
                              box=None, padding=(0, 1), expand=True)
                table.add_column(style="bold", width=18, no_wrap=True)
                table.add_column()
                for key, what in rows:
                    table.add_row(key, what)
                yield Static(table, classes="help-section")

    def action_close(self) -> None:
        self.dismiss(None)


def help_markdown() -> str:
    """The same keys as Markdown tables (docs/tui.md holds this text)."""
    out = []
    for title, rows in SECTIONS:
        out += [f"| {title} | |", "|---|---|", *(f"| `{k}` | {w} |" for k, w in rows), ""]
    return "\n".join(out)
