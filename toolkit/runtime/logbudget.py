"""A budget of log lines per time window, so a flood of bad requests cannot fill the disk."""

from __future__ import annotations

import time

__all__ = ["LineBudget"]


class LineBudget:
    """At most ``limit`` log lines per ``window`` seconds; the rest are counted, and the count is
    reported with the next line let through (a fuzzer must not be able to fill the disk)."""

    def __init__(self, limit: int = 30, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._start = time.monotonic()
        self._used = 0
        self.suppressed = 0

    def take(self) -> tuple[bool, int]:
        """(may log now, lines suppressed since the last line logged)."""
        now = time.monotonic()
        if now - self._start >= self.window:
            self._start, self._used = now, 0
        if self._used >= self.limit:
            self.suppressed += 1
            return False, 0
        self._used += 1
        skipped, self.suppressed = self.suppressed, 0
        return True, skipped
