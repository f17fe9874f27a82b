"""Sliding-window request statistics per deployment, for ``stats()`` (widgets, TUI, autoscaler).

Prometheus histograms answer "since the host started"; the widgets want "right now": rps and
p50/p95/p99 over the last minute.  Each finished request appends one small tuple to a deque
(O(1) on the hot path); percentiles are computed only when someone asks.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeploymentStats", "WINDOW_S", "percentile"]

WINDOW_S = 60.0


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


@dataclass
class DeploymentStats:
    window_s: float = WINDOW_S
    served: int = 0                 # answered by this deployment (any status), caller-facing
    mirrored: int = 0               # shadow copies this deployment answered
    mirror_dropped: int = 0         # shadow copies skipped because it had no free capacity
    throttled: int = 0              # 429 given for this deployment
    errors: dict[int, int] = field(default_factory=dict)     # status >= 400 since start
    busy_s: float = 0.0             # sum of request durations: Little's law gives mean concurrency
    last_request: float = field(default_factory=time.monotonic)
    _window: deque[tuple[float, float, int]] = field(default_factory=deque, repr=False)

    def record(self, status: int, latency_s: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.served += 1
        self.busy_s += latency_s
        self.last_request = now
        if status >= 400:
            self.errors[status] = self.errors.get(status, 0) + 1
            if status == 429:
                self.throttled += 1
        w = self._window
        w.append((now, latency_s, status))
        cutoff = now - self.window_s
        while w and w[0][0] < cutoff:
            w.popleft()

    def touch(self, now: float | None = None) -> None:
        """A request arrived (even one that will wait for a cold start)."""
        self.last_request = time.monotonic() if now is None else now

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        cutoff = now - self.window_s
        recent = [x for x in self._window if x[0] >= cutoff]
        ok = sorted(lat for _, lat, st in recent if st < 400)
        span = min(self.window_s, max(1e-9, now - recent[0][0])) if recent else self.window_s
        # A burst that started 2 s ago is 2 s of traffic, not 60: divide by the observed span
        # (at least 1 s so a single request does not read as 1000 rps).
        rps = len(recent) / max(1.0, span)
        window_errors: dict[str, int] = {}
        for _, _, st in recent:
            if st >= 400:
                window_errors[str(st)] = window_errors.get(str(st), 0) + 1

        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000.0, 3)

        return {
            "rps": round(rps, 3),
            "p50_ms": ms(percentile(ok, 50)),
            "p95_ms": ms(percentile(ok, 95)),
            "p99_ms": ms(percentile(ok, 99)),
            "window_s": self.window_s,
            "window_requests": len(recent),
            "window_errors": window_errors,
            "served": self.served,
            "mirrored": self.mirrored,
            "mirror_dropped": self.mirror_dropped,
            "throttled": self.throttled,
            "errors": {str(k): v for k, v in sorted(self.errors.items())},
            "idle_s": round(now - self.last_request, 3),
        }
