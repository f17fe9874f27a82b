"""Request statistics per deployment, for ``stats()`` (widgets, TUI, autoscaler).

Prometheus histograms answer "since the host started"; the widgets want "right now": rps and
p50/p95/p99 over the last minute.  Each finished request appends one small tuple to a deque
(O(1) on the hot path); percentiles are computed only when someone asks.

A short history feeds the dashboards' charts: 10-second buckets over the last 15 minutes.  A
request adds one to its bucket and one to a log-scale latency histogram (bins 10% wide), so
recording stays O(1) and a bucket's size does not grow with its traffic; its percentiles are
read from the histogram (within 5% of the exact value).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeploymentStats", "StatsBucket", "WINDOW_S", "BUCKET_S", "HISTORY_S", "percentile"]

WINDOW_S = 60.0
BUCKET_S = 10.0
HISTORY_S = 900.0
_HISTORY_LEN = int(HISTORY_S / BUCKET_S) + 1      # the buckets of 15 minutes plus the current one
# Latency bins: bin i holds [_BIN_BASE_MS * _BIN_STEP**i, _BIN_BASE_MS * _BIN_STEP**(i+1)).
_BIN_BASE_MS = 0.01
_BIN_STEP = 1.1
_INV_LOG_STEP = 1.0 / math.log(_BIN_STEP)
# Buckets are keyed by wall-clock time (charts show clock time) but recording takes a monotonic
# `now`; one offset, read once, converts between the two.
_WALL_OFFSET = time.time() - time.monotonic()


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


def _latency_bin(latency_s: float) -> int:
    ms = latency_s * 1000.0
    return 0 if ms <= _BIN_BASE_MS else int(math.log(ms / _BIN_BASE_MS) * _INV_LOG_STEP)


@dataclass
class StatsBucket:
    """The requests of one deployment that finished in one 10-second slot of wall-clock time."""

    start: float
    requests: int = 0
    errors: int = 0
    mirrored: int = 0
    latency_bins: dict[int, int] = field(default_factory=dict)   # successful requests only

    def percentile_ms(self, q: float) -> float | None:
        total = sum(self.latency_bins.values())
        if not total:
            return None
        rank = max(1, math.ceil(q / 100.0 * total))
        seen = 0
        for b in sorted(self.latency_bins):
            seen += self.latency_bins[b]
            if seen >= rank:
                # the bin's geometric middle: at most half a bin (5%) from any value in it
                return round(_BIN_BASE_MS * _BIN_STEP ** (b + 0.5), 3)
        return None  # pragma: no cover

    def window(self, now_wall: float) -> dict[str, Any]:
        """This bucket as a ``StatsWindow`` dict; the current bucket's rate uses the time elapsed."""
        elapsed = min(BUCKET_S, max(1.0, now_wall - self.start))
        return {
            "ts": self.start, "duration_s": BUCKET_S, "requests": self.requests,
            "rps": round(self.requests / elapsed, 3), "p50_ms": self.percentile_ms(50),
            "p95_ms": self.percentile_ms(95), "p99_ms": self.percentile_ms(99), "errors": self.errors,
            "mirrored": self.mirrored, "served": None,
        }


@dataclass
class DeploymentStats:
    window_s: float = WINDOW_S
    served: int = 0                 # answered by this deployment (any status), caller-facing
    _mirrored: int = 0              # shadow copies this deployment answered (see `mirrored`)
    mirror_dropped: int = 0         # shadow copies skipped because it had no free capacity
    throttled: int = 0              # 429 given for this deployment
    errors: dict[int, int] = field(default_factory=dict)     # status >= 400 since start
    busy_s: float = 0.0             # sum of request durations: Little's law gives mean concurrency
    last_request: float = field(default_factory=time.monotonic)
    _window: deque[tuple[float, float, int]] = field(default_factory=deque, repr=False)
    _history: deque[StatsBucket] = field(default_factory=lambda: deque(maxlen=_HISTORY_LEN), repr=False)
    created: float = field(default_factory=time.time)       # wall clock: where the history starts

    @property
    def mirrored(self) -> int:
        return self._mirrored

    @mirrored.setter
    def mirrored(self, value: int) -> None:
        # The gateway counts shadow answers with `stats.mirrored += 1`; the history bucket follows.
        delta = value - self._mirrored
        self._mirrored = value
        if delta > 0:
            self._bucket(time.monotonic()).mirrored += delta

    def _bucket(self, now: float) -> StatsBucket:
        start = (now + _WALL_OFFSET) // BUCKET_S * BUCKET_S
        h = self._history
        if h and h[-1].start >= start:
            return h[-1]          # same slot (or a clock step back: keep counting in the last one)
        b = StatsBucket(start)
        h.append(b)               # maxlen drops the bucket that left the 15 minutes
        return b

    def record(self, status: int, latency_s: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.served += 1
        self.busy_s += latency_s
        self.last_request = now
        if status >= 400:
            self.errors[status] = self.errors.get(status, 0) + 1
            if status == 429:
                self.throttled += 1
        b = self._bucket(now)
        b.requests += 1
        if status >= 400:
            b.errors += 1
        else:
            k = _latency_bin(latency_s)
            b.latency_bins[k] = b.latency_bins.get(k, 0) + 1
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

    def history(self, since: float | None = None, now: float | None = None) -> list[dict[str, Any]]:
        """10-second ``StatsWindow`` dicts, oldest first, over the last 15 minutes (or since ``since``,
        wall clock), slots without requests included as zeros so charts keep their time axis."""
        now = time.monotonic() if now is None else now
        now_wall = now + _WALL_OFFSET
        current = now_wall // BUCKET_S * BUCKET_S
        first = max(current - HISTORY_S, self.created // BUCKET_S * BUCKET_S)
        if since is not None:
            # a bucket is returned when it ends after `since` (the current one always is)
            first = max(first, (since // BUCKET_S) * BUCKET_S)
        by_start = {b.start: b for b in self._history}
        out = []
        start = first
        while start <= current:
            b = by_start.get(start) or StatsBucket(start)
            out.append(b.window(now_wall))
            start += BUCKET_S
        return out
