"""Live routes for UIs (``/api/v1``, admin token): snapshot, events after a cursor, stats history,
log tails with offsets and job progress.  Answers are ``toolkit.views`` classes, so the OpenAPI
document describes them and the SDK reads them back with ``from_dict``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ..errors import InvalidSpec, NotFound
from ..online.logtail import MAX_CHUNK_BYTES, read_chunk
from ..views import Event, EventPage, JobProgress, LogChunk, Snapshot, StatsSeries
from .api_schema import error_responses as _errors
from .control import require_admin
from ..context import HostContext
from .snapshot import BE, OD, OE, event_page, job_progress, stats_history, take_snapshot

__all__ = ["build_live_router", "MAX_CURSOR"]

# Event ids and byte offsets are SQLite / file integers: anything larger is a caller's mistake
# (a 400 naming the parameter), not an OverflowError deep in the store (a 500).
MAX_CURSOR = 2**63 - 1


def _ctx(request: Request) -> HostContext:
    return request.app.state.ctx


def _finite(name: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise InvalidSpec(f"{name}: must be a finite number of seconds since the epoch, got {value}")
    return value


def build_live_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)], responses=_errors(401))

    @r.get("/snapshot", tags=["live"], response_model=Snapshot, responses=_errors(400, 404),
           summary="One dashboard frame: host, endpoints, deployments, instances, stats, jobs, events")
    async def snapshot(
        request: Request, endpoint: str | None = None,
        events_after: int | None = Query(None, ge=0, le=MAX_CURSOR,
                                         description="event cursor; omitted: the newest events"),
        events_limit: int = Query(100, ge=1, le=1000),
    ) -> Any:
        ctx = _ctx(request)
        if endpoint is not None and ctx.store.find(OE, endpoint) is None and ctx.store.find(BE, endpoint) is None:
            raise NotFound(f"endpoint {endpoint!r} does not exist (neither online nor batch)")
        # On the event loop, not in a thread: the online service's live state (deques, dicts) is
        # only consistent there; the store reads are small indexed SQLite queries.
        return take_snapshot(ctx, endpoint=endpoint, events_after=events_after, events_limit=events_limit)

    @r.get("/events", tags=["host"], response_model=list[Event] | EventPage, responses=_errors(400),
           summary="Events: `after=N` pages forward from a cursor (ascending, with `more`); "
                   "`since=N` keeps its old meaning (the newest `limit` after N, as a list)")
    async def events(
        request: Request, endpoint: str | None = None, deployment: str | None = None, job: str | None = None,
        after: int | None = Query(None, ge=0, le=MAX_CURSOR, description="cursor: the last event id seen"),
        since: int = Query(0, ge=-MAX_CURSOR, le=MAX_CURSOR), limit: int = Query(100, ge=1, le=10_000),
    ) -> Any:
        ctx = _ctx(request)
        if after is not None:
            return event_page(ctx, after, endpoint=endpoint, deployment=deployment, job=job, limit=limit)
        evs = ctx.store.events(endpoint=endpoint, deployment=deployment, job=job, since_id=since, limit=limit)
        return JSONResponse([e.to_dict() for e in evs])  # the old answer, byte for byte

    @r.get("/stats/history", tags=["online"], response_model=list[StatsSeries], responses=_errors(400, 404),
           summary="Per deployment: 10-second buckets of requests, rps, latency percentiles over 15 minutes")
    async def history(request: Request, endpoint: str | None = None, since: float | None = None) -> Any:
        ctx = _ctx(request)
        _finite("since", since)
        if endpoint is not None:
            ctx.store.get(OE, endpoint)
        return stats_history(ctx, endpoint, since)

    @r.get("/online-endpoints/{endpoint}/deployments/{name}/log-tail", tags=["online"], response_model=LogChunk,
           responses=_errors(400, 404),
           summary="An instance's log from a byte offset (omitted: the last max_bytes); pass `offset` back")
    async def log_tail(
        request: Request, endpoint: str, name: str, instance: str | None = None,
        offset: int | None = Query(None, ge=0, le=MAX_CURSOR),
        max_bytes: int = Query(65536, ge=1, le=MAX_CHUNK_BYTES),
    ) -> Any:
        ctx = _ctx(request)
        ctx.store.get(OD, endpoint, name)
        files = ctx.online.log_files(endpoint, name)
        ids = [i for i, _, _ in files]
        if not files:
            if instance is not None:
                raise NotFound(f"deployment {name!r} of {endpoint!r} has no logs yet (asked for instance {instance!r})")
            return LogChunk(text="", offset=0, instance=None, instances=[])
        if instance is None:
            # A stable default (the first running instance by id) so a follower keeps its file.
            running = sorted(i for i, _, inst in files if inst is not None)
            instance = running[0] if running else ids[-1]
        elif instance not in ids:
            raise NotFound(f"deployment {name!r} of {endpoint!r} has no log for instance {instance!r}; "
                           f"instances with logs: {', '.join(ids)}")
        path = next(p for i, p, _ in files if i == instance)
        text, next_offset = await asyncio.to_thread(read_chunk, path, offset, max_bytes)
        return LogChunk(text=text, offset=next_offset, instance=instance, instances=ids)

    @r.get("/jobs/{job_id}/progress", tags=["batch"], response_model=JobProgress, responses=_errors(404),
           summary="A job's progress: mini-batches, rows, rate, ETA, failed files")
    async def progress(request: Request, job_id: str) -> Any:
        ctx = _ctx(request)
        job = ctx.batch.job(job_id)
        return job_progress(ctx, job)

    return r
