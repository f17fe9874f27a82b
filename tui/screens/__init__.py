"""Screens pushed over the main view: deploy flow, dialogs, help, log, the no-host screen."""

__all__: list[str] = []
