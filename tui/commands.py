"""The command palette (ctrl+p): one entry for every action of every view."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

__all__ = ["ActionsProvider", "PALETTE"]

# (command, view, view action, what it does)
PALETTE: list[tuple[str, str, str, str]] = [
    ("deploy", "models", "deploy", "Deploy the selected model version (advisor, settings, progress)"),
    ("models: refresh", "models", "refresh", "Read the registry's models again"),
    ("traffic: edit", "endpoints", "edit_traffic", "Edit the selected endpoint's traffic and mirror"),
    ("endpoint: credentials", "endpoints", "credentials", "Reveal the selected endpoint's keys or token"),
    ("endpoint: delete", "endpoints", "delete", "Delete the selected endpoint or deployment (asks first)"),
    ("deployment: log", "endpoints", "log", "Follow the selected deployment's log"),
    ("endpoint: live", "endpoints", "live", "Live traffic of the selected endpoint"),
    ("endpoint: test", "endpoints", "test", "Send a test request to the selected endpoint or deployment"),
    ("job: submit", "jobs", "submit", "Start a batch job (endpoint, input path, overrides)"),
    ("job: cancel", "jobs", "cancel", "Cancel the selected batch job"),
    ("job: details", "jobs", "details", "Errors per file and a preview of the output"),
    ("test: send", "test", "send", "Send the request in the Test panel"),
    ("view: models", "models", "noop", "Registered models, versions, signatures"),
    ("view: endpoints", "endpoints", "noop", "Online and batch endpoints and deployments"),
    ("view: live", "live", "noop", "Requests/s, latency and errors per deployment"),
    ("view: jobs", "jobs", "noop", "Batch jobs with progress"),
    ("view: test", "test", "noop", "Send a request and see who served it"),
]


class ActionsProvider(Provider):
    """Palette entries that switch to a view and run one of its actions."""

    def _run(self, view: str, action: str) -> None:
        app: Any = self.app
        app.view_action(view, action)

    async def discover(self) -> Hits:
        for command, view, action, help_text in PALETTE:
            yield DiscoveryHit(command, partial(self._run, view, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command, view, action, help_text in PALETTE:
            score = matcher.match(command)
            if score > 0:
                yield Hit(score, matcher.highlight(command), partial(self._run, view, action), help=help_text)
