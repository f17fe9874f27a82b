"""The live read calls, described once and run by the sync and the async client alike.

Each function returns an :class:`ApiCall`: method, path, query and how to parse the answer into
``toolkit.views``.  ``Workspace`` runs them with ``HostClient.run``, ``AsyncWorkspace`` with
``await AsyncHostClient.run``, so the two cannot disagree on a parameter or a type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import quote

from .errors import InvalidInput
from .views import EventPage, HostStatus, JobProgress, LogChunk, Snapshot, StatsSeries

__all__ = [
    "ApiCall", "status_call", "snapshot_call", "events_call", "stats_history_call", "log_tail_call",
    "job_progress_call",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    method: str
    path: str
    params: dict[str, Any] | None
    parse: Callable[[Any], T]


def _seg(value: str, what: str) -> str:
    """A name as one URL path segment (a name holding '/' must not reach another route)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what}: expected a non-empty name, got {value!r}")
    return quote(value, safe="")


def _cursor(value: int | None, what: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidInput(f"{what}: expected an integer >= 0 (a value this SDK returned), got {value!r}")
    return value


def status_call() -> ApiCall[HostStatus]:
    return ApiCall("GET", "/status", None, HostStatus.from_dict)


def snapshot_call(endpoint: str | None = None, events_after: int | None = None,
                  events_limit: int = 100) -> ApiCall[Snapshot]:
    params = {"endpoint": endpoint, "events_after": _cursor(events_after, "events_after"),
              "events_limit": events_limit}
    return ApiCall("GET", "/snapshot", params, Snapshot.from_dict)


def events_call(after: int = 0, *, endpoint: str | None = None, deployment: str | None = None,
                job: str | None = None, limit: int = 100) -> ApiCall[EventPage]:
    params = {"after": _cursor(after, "after"), "endpoint": endpoint, "deployment": deployment, "job": job,
              "limit": limit}
    return ApiCall("GET", "/events", params, EventPage.from_dict)


def _series(body: Any) -> list[StatsSeries]:
    return [StatsSeries.from_dict(s) for s in body]


def stats_history_call(endpoint: str | None = None, *, since: float | None = None) -> ApiCall[list[StatsSeries]]:
    return ApiCall("GET", "/stats/history", {"endpoint": endpoint, "since": since}, _series)


def log_tail_call(endpoint: str, name: str, *, instance: str | None = None, offset: int | None = None,
                  max_bytes: int = 65536) -> ApiCall[LogChunk]:
    path = f"/online-endpoints/{_seg(endpoint, 'endpoint')}/deployments/{_seg(name, 'name')}/log-tail"
    params = {"instance": instance, "offset": _cursor(offset, "offset"), "max_bytes": max_bytes}
    return ApiCall("GET", path, params, LogChunk.from_dict)


def job_progress_call(job_id: str) -> ApiCall[JobProgress]:
    return ApiCall("GET", f"/jobs/{_seg(job_id, 'job_id')}/progress", None, JobProgress.from_dict)
