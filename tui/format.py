"""Short, fixed-width renderings of numbers for tables and sparklines' captions."""

from __future__ import annotations

import math
from datetime import datetime

__all__ = ["ms", "rate", "ago", "clock", "money", "bar", "STATE_STYLE"]

# Colours chosen to keep a 4:1 contrast or better on both dark and light backgrounds.
STATE_STYLE = {
    "Succeeded": "green4", "Ready": "green4", "Completed": "green4",
    "Creating": "dark_orange3", "Updating": "dark_orange3", "Starting": "dark_orange3", "Running": "dark_orange3",
    "Queued": "dark_orange3", "Preparing": "dark_orange3", "Finalizing": "dark_orange3", "Canceling": "dark_orange3",
    "Failed": "red3", "Unhealthy": "red3", "Canceled": "magenta3", "Deleting": "magenta3",
}


def ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}/s" if value >= 100 else f"{value:.1f}/s"


def ago(ts: float | None, now: float) -> str:
    if not ts:
        return "-"
    s = max(0.0, now - ts)
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f}m ago"
    return f"{s / 3600:.1f}h ago"


def clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "--:--:--"


def money(value: float | None, currency: str = "USD") -> str:
    if value is None:
        return "-"
    sign = "$" if currency == "USD" else f"{currency} "
    return f"{sign}{value:,.4f}" if value < 1 else f"{sign}{value:,.2f}"


def bar(done: int, total: int | None, width: int = 12) -> str:
    """A text progress bar that fits a table cell: ``███████░░░░░  58%``."""
    if not total:
        return "░" * width + "   -"
    frac = max(0.0, min(1.0, done / total))
    full = int(round(frac * width))
    return "█" * full + "░" * (width - full) + f" {frac * 100:3.0f}%"
