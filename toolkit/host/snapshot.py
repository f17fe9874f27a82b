"""The host's live views for UIs, built from the store and the services as ``toolkit.views``.

A dashboard frame (``GET /api/v1/snapshot``) is one call: the host, every endpoint with its
deployments, their instances and current stats, the active and recent jobs, and a page of
events.  Each part is built here once and reused by the narrower live routes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from .. import __version__
from ..store import Event as StoredEvent
from ..store import Resource
from ..views import (
    JOB_TERMINAL_STATES, DeploymentStatus, EndpointStatus, Event, EventPage, HostStatus, JobProgress, Snapshot,
    StatsSeries, StatsWindow,
)
from ..context import HostContext

__all__ = [
    "host_status", "online_endpoint_status", "batch_endpoint_status", "job_progress", "event_page",
    "latest_events", "stats_history", "take_snapshot", "RECENT_JOBS", "MAX_FAILED_FILES",
]

log = logging.getLogger("toolkit.host")

OE, OD, BE, BD = "online-endpoint", "online-deployment", "batch-endpoint", "batch-deployment"
RECENT_JOBS = 20          # finished jobs a snapshot shows besides the active ones
MAX_FAILED_FILES = 100    # failed files named per job (the error log folder has them all)


def host_status(ctx: HostContext) -> HostStatus:
    return HostStatus(url=ctx.settings.url, pid=os.getpid(), version=__version__, home=str(ctx.home.root),
                      uptime_s=round(time.time() - ctx.settings.started_at, 1))


def _current_window(snap: dict[str, Any]) -> StatsWindow:
    """The online service's sliding-window stats of one deployment as a ``StatsWindow``."""
    return StatsWindow(
        ts=round(time.time(), 3), duration_s=snap.get("window_s", 0.0), requests=snap.get("window_requests", 0),
        rps=snap.get("rps", 0.0), p50_ms=snap.get("p50_ms"), p95_ms=snap.get("p95_ms"), p99_ms=snap.get("p99_ms"),
        errors=sum((snap.get("window_errors") or {}).values()), mirrored=snap.get("mirrored", 0),
        served=snap.get("served"),
    )


def _deployment_record(ctx: HostContext, r: Resource) -> dict[str, Any]:
    rec = r.to_dict()
    try:
        rec.update(ctx.online.describe(r.endpoint, r.name))
    except Exception as err:  # a frame must not fail because one live detail is missing
        log.debug("describe %s/%s failed: %s", r.endpoint, r.name, err)
    return rec


def online_endpoint_status(ctx: HostContext, r: Resource) -> EndpointStatus:
    spec = r.spec
    traffic, mirror = spec.get("traffic") or {}, spec.get("mirror_traffic") or {}
    stats: dict[str, Any] = {}
    try:
        stats = ctx.online.stats(r.name).get("deployments", {})
    except Exception as err:
        log.debug("stats of %s failed: %s", r.name, err)
    deployments = [
        DeploymentStatus.from_record(
            _deployment_record(ctx, d), traffic=int(traffic.get(d.name, 0)), mirror=int(mirror.get(d.name, 0)),
            stats=_current_window(stats[d.name]) if d.name in stats else None)
        for d in ctx.store.list(OD, r.name)
    ]
    return EndpointStatus(
        name=r.name, kind="online", auth_mode=spec.get("auth_mode"), traffic=dict(traffic),
        mirror_traffic=dict(mirror), scoring_uri=f"{ctx.settings.url}/endpoints/{r.name}/score",
        description=spec.get("description"), deployments=deployments, state=r.provisioning_state,
    )


def batch_endpoint_status(ctx: HostContext, r: Resource) -> EndpointStatus:
    deployments = [DeploymentStatus.from_record(d.to_dict()) for d in ctx.store.list(BD, r.name)]
    return EndpointStatus(
        name=r.name, kind="batch", scoring_uri=f"{ctx.settings.url}/api/v1/batch-endpoints/{r.name}/jobs",
        description=r.spec.get("description"), deployments=deployments,
        default_deployment=(r.spec.get("defaults") or {}).get("deployment_name"), state=r.provisioning_state,
    )


def _failed_files(ctx: HostContext, job_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for mb in ctx.store.minibatches(job_id):
        if not mb["failed_files"] or not mb["error"].startswith("["):
            continue
        try:
            failures = json.loads(mb["error"])
        except ValueError:
            continue
        for f in failures:
            out[str(f.get("name") or f.get("file"))] = str(f.get("error", ""))
            if len(out) >= MAX_FAILED_FILES:
                return out
    return out


def job_progress(ctx: HostContext, job: dict[str, Any]) -> JobProgress:
    """A job record (store row or batch service view) as ``JobProgress``."""
    prog = job.get("progress") or {}
    errors = int(prog.get("failed_files") or 0)
    return JobProgress(
        id=job["id"], endpoint=job["endpoint"], deployment=job["deployment"], state=job["state"],
        done=job["state"] in JOB_TERMINAL_STATES,
        mini_batches_done=int(prog.get("completed") or 0) + int(prog.get("failed") or 0),
        mini_batches_total=int(prog.get("total_minibatches") or 0), rows=int(prog.get("rows") or 0),
        rows_per_s=prog.get("rows_per_s"), eta_s=prog.get("eta_s"),
        failed_files=_failed_files(ctx, job["id"]) if errors or prog.get("failed") else {},
        error_count=errors, output_path=str(job.get("output") or ""), created_at=job.get("created_at"),
        finished_at=job.get("ended_at"), started_at=job.get("started_at"), message=job.get("message") or "",
        queue_position=job.get("queue_position"),
    )


def _event(e: StoredEvent) -> Event:
    return Event(id=e.id, ts=e.ts, reason=e.reason, message=e.message, endpoint=e.endpoint,
                 deployment=e.deployment, job=e.job, level=e.level)


def event_page(ctx: HostContext, after: int, *, endpoint: str | None = None, deployment: str | None = None,
               job: str | None = None, limit: int = 100) -> EventPage:
    """The oldest ``limit`` events after the cursor, ascending, and whether more remain."""
    events, more = ctx.store.events_after(after, endpoint=endpoint, deployment=deployment, job=job, limit=limit)
    return EventPage(events=[_event(e) for e in events], cursor=events[-1].id if events else after, more=more)


def latest_events(ctx: HostContext, *, endpoint: str | None = None, limit: int = 100) -> EventPage:
    """The newest ``limit`` events (a dashboard's first frame), ascending; its cursor continues from them."""
    events = ctx.store.events(endpoint=endpoint, limit=limit)
    return EventPage(events=[_event(e) for e in events], cursor=events[-1].id if events else 0, more=False)


def stats_history(ctx: HostContext, endpoint: str | None = None, since: float | None = None) -> list[StatsSeries]:
    return [StatsSeries.from_dict(s) for s in ctx.online.stats_history(endpoint, since)]


def _jobs(ctx: HostContext, endpoint: str | None) -> list[JobProgress]:
    rows = ctx.batch.jobs(endpoint)
    finished = [j for j in rows if j["state"] in JOB_TERMINAL_STATES]
    keep = {j["id"] for j in finished[-RECENT_JOBS:]}
    return [job_progress(ctx, j) for j in rows if j["state"] not in JOB_TERMINAL_STATES or j["id"] in keep]


def take_snapshot(ctx: HostContext, *, endpoint: str | None = None, events_after: int | None = None,
                  events_limit: int = 100) -> Snapshot:
    """One dashboard frame; ``endpoint`` narrows it to one endpoint, its jobs and its events."""
    online = [online_endpoint_status(ctx, r) for r in ctx.store.list(OE) if endpoint in (None, r.name)]
    batch = [batch_endpoint_status(ctx, r) for r in ctx.store.list(BE) if endpoint in (None, r.name)]
    if events_after is None:
        events = latest_events(ctx, endpoint=endpoint, limit=events_limit)
    else:
        events = event_page(ctx, events_after, endpoint=endpoint, limit=events_limit)
    return Snapshot(taken_at=round(time.time(), 3), host=host_status(ctx), online_endpoints=online,
                    batch_endpoints=batch, jobs=_jobs(ctx, endpoint), events=events)
