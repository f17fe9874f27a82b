"""Short, fixed-width renderings of numbers for tables and sparklines' captions."""

from __future__ import annotations

import math
from datetime import datetime

__all__ = ["ms", "rate", "ago", "clock", "money", "bar", "STATE_STYLE"]

# Theme-relative colours (Rich names that Textual's themes map sensibly on dark and light).
STATE_STYLE = {
    "Succeeded": "green", "Ready": "green", "Completed": "green",
    "Creating": "yellow", "Updating": "yellow", "Starting": "yellow", "Running": "yellow",
    "Queued": "yellow", "Preparing": "yellow", "Finalizing": "yellow", "Canceling": "yellow",
    "Failed": "red", "Unhealthy": "red", "Canceled": "magenta", "Deleting": "magenta",
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
