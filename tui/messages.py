"""Messages the app posts to its views when the host's state changes."""

from __future__ import annotations

from typing import Any

from textual.message import Message

__all__ = ["HostConnected", "HostLost", "SnapshotUpdated", "ModelsLoaded", "OpenDeploy", "OpenLive", "OpenTest"]


class HostConnected(Message):
    """A workspace host answered; ``url`` is where."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url


class HostLost(Message):
    """The host stopped answering (or never ran); ``reason`` says what the SDK saw."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class SnapshotUpdated(Message):
    """A new frame of the host's state is in ``app.snapshot``."""


class ModelsLoaded(Message):
    """The registry's models are in ``app.models``."""


class OpenDeploy(Message):
    """Start the deploy flow for a model URI (posted by the Models view)."""

    def __init__(self, model_uri: str, model: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model_uri = model_uri
        self.model = model


class OpenLive(Message):
    """Show the Live view of an online endpoint."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint


class OpenTest(Message):
    """Show the Test panel aimed at an endpoint (and optionally one deployment)."""

    def __init__(self, endpoint: str, deployment: str | None = None) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.deployment = deployment
