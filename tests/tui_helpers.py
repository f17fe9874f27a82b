"""Helpers shared by the TUI tests: wait on the app's state with a deadline, read the screen."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

__all__ = ["until", "screen_text", "type_into"]


async def until(pilot: Any, condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Let the app run until ``condition()`` is truthy (its value is returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # a widget not mounted yet reads as "not yet"
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n--- screen ---\n"
                                 f"{screen_text(pilot.app)}\n--- notifications ---\n"
                                 + "\n".join(n.message for n in pilot.app._notifications))
        await pilot.pause(0.1)
        await asyncio.sleep(0)


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text lines."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


async def type_into(pilot: Any, selector: str, text: str) -> None:
    """Focus the input ``selector``, clear it and type ``text`` key by key, as a user would."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    await pilot.pause()
    widget.value = ""
    await pilot.press(*list(text))
    await pilot.pause()
