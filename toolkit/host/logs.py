"""The host's log: one size-bounded rotating file, and rate limits on the lines clients can cause.

A fuzzer (or a misconfigured client retrying in a loop) sends thousands of bad requests a
minute.  Each client error is worth one line to whoever audits the host (a wrong admin token
is how a probe looks), but not thousands: per kind of line a burst gets through, then a trickle,
and the next line that gets through says how many were left out.  Rotation is the hard bound
on disk use whatever logs: ``host.log`` plus ``LOG_BACKUPS`` older files of ``LOG_MAX_BYTES``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Hashable

__all__ = [
    "LOG_MAX_BYTES",
    "LOG_BACKUPS",
    "RateLimitFilter",
    "RotatingHostLog",
    "ClientErrorLog",
    "setup_host_logging",
    "request_log",
]

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
# Control-plane requests answered with a 4xx, one line each (rate-limited per status).
request_log = logging.getLogger("toolkit.host.requests")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RateLimitFilter(logging.Filter):
    """Lets ``burst`` records of one key through at once, then ``per_second`` on average (a
    token bucket per key); the first record let through after a gap names how many were dropped.

    Records below ``min_level`` always pass, so only the kinds of line a client can repeat are
    limited (uvicorn's start-up lines are INFO, its "Invalid HTTP request" lines WARNING)."""

    def __init__(
        self, *, burst: int = 20, per_second: float = 0.5, min_level: int = logging.NOTSET,
        key: Callable[[logging.LogRecord], Hashable] = lambda r: (r.name, r.levelno, str(r.msg)),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst, self.per_second, self.min_level = float(burst), per_second, min_level
        self._key, self._clock = key, clock
        self._buckets: dict[Hashable, list[float]] = {}  # key -> [tokens, last refill, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key, now = self._key(record), self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= 1024:  # keys are few by design; never let them grow unbounded
                    self._buckets.clear()
                bucket = self._buckets[key] = [self.burst, now, 0]
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.per_second)
            bucket[1] = now
            if bucket[0] < 1:
                bucket[2] += 1
                return False
            bucket[0] -= 1
            dropped, bucket[2] = int(bucket[2]), 0
        if dropped:
            # Formatted here so a '%' in the message cannot meet the added text.
            record.msg, record.args = f"{record.getMessage()} [{dropped} similar lines suppressed]", None
        return True


class RotatingHostLog(logging.handlers.RotatingFileHandler):
    """``host.log`` rotated by size.  When the host runs detached its stdout and stderr are
    that same file (for what is printed before logging starts, or by libraries and workers);
    after a rollover they are pointed at the new file too, so nothing keeps growing the old one."""

    def __init__(self, path: Path, *, follow_std: bool, max_bytes: int = LOG_MAX_BYTES,
                 backups: int = LOG_BACKUPS) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=False)
        self._follow_std = follow_std

    def _open(self) -> Any:
        # Owner-only: the log names endpoints, paths and client addresses.
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:
        old = _inode(self.baseFilename)
        super().doRollover()
        if not self._follow_std or self.stream is None or old is None:
            return
        for fd in (1, 2):
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == old:
                try:
                    sys.stdout.flush() if fd == 1 else sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(self.stream.fileno(), fd)


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def setup_host_logging(log_path: Path, *, foreground: bool, max_bytes: int = LOG_MAX_BYTES,
                       backups: int = LOG_BACKUPS) -> RotatingHostLog:
    """Log INFO and up to the rotating ``log_path`` (and to the terminal in the foreground)."""
    fmt = logging.Formatter(_FORMAT)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for old in [h for h in root.handlers if isinstance(h, RotatingHostLog)]:
        root.removeHandler(old)
        old.close()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingHostLog(log_path, follow_std=not foreground, max_bytes=max_bytes, backups=backups)
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if foreground:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    for noisy in ("uvicorn.access", "httpx", "alembic", "distributed.shuffle"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn warns once per malformed request ("Invalid HTTP request received."): client-made lines.
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, RateLimitFilter) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(RateLimitFilter(min_level=logging.WARNING))
    return handler


def _status_key(record: logging.LogRecord) -> Hashable:
    return record.args[0] if isinstance(record.args, tuple) and record.args else record.msg


if not any(isinstance(f, RateLimitFilter) for f in request_log.filters):
    request_log.addFilter(RateLimitFilter(key=_status_key))


def _printable(text: str, limit: int = 200) -> str:
    """A request path as one safe log line: control characters escaped, length capped."""
    out = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


class ClientErrorLog:
    """ASGI wrapper: one line per control-plane response with a 4xx status (method, path,
    client address; never headers, query strings or bodies, which can carry secrets)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_logging(message: Any) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                status = message["status"]
                client = (scope.get("client") or ("-",))[0]
                request_log.log(logging.WARNING if status in (401, 403) else logging.INFO,
                                "%d %s %s from %s", status, scope.get("method", "-"),
                                _printable(scope.get("path", "")), client)
            await send(message)

        await self.app(scope, receive, send_logging)
