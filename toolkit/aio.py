"""``toolkit.AsyncWorkspace``: the read side of the SDK for event loops (a Textual app polls
with it without a thread per call).

It attaches to the workspace's running host and never starts one.  Requests are the same
``toolkit.live`` calls the sync ``Workspace`` runs, sent by ``AsyncHostClient`` (which shares its
request building and error mapping with the sync client).
"""

from __future__ import annotations

import os
from typing import Any

from .client import DEFAULT_TIMEOUT, AsyncHostClient
from .errors import HostNotRunning
from .home import Home
from . import launcher
from .live import events_call, job_progress_call, log_tail_call, snapshot_call, stats_history_call, status_call
from .views import EventPage, HostStatus, JobProgress, LogChunk, Snapshot, StatsSeries

__all__ = ["AsyncWorkspace"]


class AsyncWorkspace:
    """Async, read-only access to a running host: ``async with AsyncWorkspace() as aws: ...``.

    ``home`` is a path or ``Home`` (default ``$ENDPOINTS_HOME`` or ``./mlruns``); raises
    ``HostNotRunning`` when no host runs for it.
    """

    def __init__(self, home: str | os.PathLike[str] | Home | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.home = home if isinstance(home, Home) else Home.resolve(home)
        info = launcher.read_host(self.home)
        if info is None:
            raise HostNotRunning(f"no host is running for {self.home.root}; start one with `endpoints up`")
        token = self.home.admin_token()
        if not token:
            raise HostNotRunning(f"{self.home.admin_token_file} is missing; restart the host")
        self.host_info = info
        self._client = AsyncHostClient(info.url, token, timeout)

    @property
    def url(self) -> str:
        return self.host_info.url

    async def status(self) -> HostStatus:
        return await self._client.run(status_call())

    async def snapshot(self, *, endpoint: str | None = None, events_after: int | None = None,
                       events_limit: int = 100) -> Snapshot:
        return await self._client.run(snapshot_call(endpoint, events_after, events_limit))

    async def events_page(self, after: int = 0, *, endpoint: str | None = None, deployment: str | None = None,
                          job: str | None = None, limit: int = 100) -> EventPage:
        return await self._client.run(events_call(after, endpoint=endpoint, deployment=deployment, job=job,
                                                  limit=limit))

    async def stats_history(self, endpoint: str | None = None, *, since: float | None = None) -> list[StatsSeries]:
        return await self._client.run(stats_history_call(endpoint, since=since))

    async def log_tail(self, endpoint: str, name: str, *, instance: str | None = None, offset: int | None = None,
                       max_bytes: int = 65536) -> LogChunk:
        return await self._client.run(log_tail_call(endpoint, name, instance=instance, offset=offset,
                                                    max_bytes=max_bytes))

    async def job_progress(self, job_id: str) -> JobProgress:
        return await self._client.run(job_progress_call(job_id))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> "AsyncWorkspace":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncWorkspace home={str(self.home.root)!r} url={self.url!r}>"
