"""Typed, read-only views of what a host reports, for UIs (TUI, notebook widgets) and scripts.

Every view is a frozen dataclass with ``from_dict``/``to_dict`` (the JSON the host sends), a
one-line ``repr`` and an HTML table for notebooks.  The host builds its live answers (snapshot,
events, stats history, log tails, job progress) from these same classes, so the wire format and
the SDK's types cannot drift apart.  ``from_dict`` ignores keys it does not know: a newer host
may add fields without breaking an older SDK.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Mapping

__all__ = [
    "StatsWindow", "StatsSeries", "InstanceStatus", "DeploymentStatus", "EndpointStatus", "Event",
    "EventPage", "JobProgress", "LogChunk", "HostStatus", "Snapshot", "InvokeResult",
    "JOB_TERMINAL_STATES",
]

JOB_TERMINAL_STATES = ("Completed", "Failed", "Canceled")


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)) or ts <= 0:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}ms"


@dataclass(frozen=True)
class _View:
    """from_dict/to_dict/_repr_html_ shared by every view."""

    # field name -> view class, for fields holding a view or a list of views
    _nested: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | "_View") -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict expects a mapping, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            sub_name = cls._nested.get(f.name)
            if sub_name is not None and value is not None:
                sub = _VIEWS[sub_name]
                value = [sub.from_dict(v) for v in value] if isinstance(value, list) else sub.from_dict(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, _View):
                value = value.to_dict()
            elif isinstance(value, list):
                value = [v.to_dict() if isinstance(v, _View) else v for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    def _html_value(self, name: str, value: Any) -> str:
        if isinstance(value, _View):
            return value._repr_html_()
        if isinstance(value, list) and value and isinstance(value[0], _View):
            return _table(value)
        if name.endswith("_at") or name == "ts":
            return html.escape(_when(value))
        if isinstance(value, dict):
            return html.escape(", ".join(f"{k}={v}" for k, v in value.items()) or "-")
        if isinstance(value, list):
            return html.escape(", ".join(str(v) for v in value) or "-")
        return html.escape("-" if value is None or value == "" else str(value))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(f.name)}</th>"
            f"<td style='text-align:left'>{self._html_value(f.name, getattr(self, f.name))}</td></tr>"
            for f in fields(self)
        )
        return (f"<table><caption style='text-align:left'><b>{type(self).__name__}</b></caption>"
                f"{rows}</table>")

    # one row of a table of views of the same kind (lists inside a view)
    _columns: ClassVar[tuple[str, ...]] = ()

    def _row(self) -> list[str]:
        return [self._html_value(c, getattr(self, c)) for c in self._columns]


def _table(items: list[_View]) -> str:
    cols = items[0]._columns or tuple(f.name for f in fields(items[0]))[:6]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{v}</td>" for v in it._row()) + "</tr>"
                   for it in items)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True, repr=False)
class StatsWindow(_View):
    """Requests of one deployment over a window: a 10-second history bucket, or "now" (the last minute)."""

    ts: float = 0.0
    duration_s: float = 0.0
    requests: int = 0
    rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    mirrored: int = 0
    served: int | None = None
    _columns: ClassVar[tuple[str, ...]] = ("ts", "requests", "rps", "p50_ms", "p95_ms", "p99_ms", "errors")

    def __repr__(self) -> str:
        return (f"<StatsWindow {_when(self.ts)} {self.duration_s:g}s: {self.requests} req, {self.rps:g} rps, "
                f"p50={_ms(self.p50_ms)} p95={_ms(self.p95_ms)} p99={_ms(self.p99_ms)} errors={self.errors}>")


@dataclass(frozen=True, repr=False)
class StatsSeries(_View):
    """A deployment's stats history, oldest bucket first."""

    endpoint: str = ""
    deployment: str = ""
    buckets: list[StatsWindow] = field(default_factory=list)
    _nested: ClassVar[dict[str, str]] = {"buckets": "StatsWindow"}

    def __repr__(self) -> str:
        total = sum(b.requests for b in self.buckets)
        return f"<StatsSeries {self.endpoint}/{self.deployment}: {len(self.buckets)} buckets, {total} requests>"


@dataclass(frozen=True, repr=False)
class InstanceStatus(_View):
    id: str = ""
    pid: int | None = None
    state: str = ""
    ready: bool = False
    started_at: float | None = None
    restarts: int = 0
    cpu_percent: float | None = None
    rss_mib: float | None = None
    in_flight: int = 0
    message: str = ""
    _columns: ClassVar[tuple[str, ...]] = ("id", "pid", "state", "restarts", "cpu_percent", "rss_mib", "in_flight")

    @classmethod
    def from_describe(cls, d: Mapping[str, Any]) -> "InstanceStatus":
        """From the online service's per-instance description (``describe()["instances"]``)."""
        return cls(id=str(d.get("id", "")), pid=d.get("pid"), state=str(d.get("state", "")),
                   ready=d.get("state") == "Ready", started_at=d.get("started_at"),
                   restarts=int(d.get("restarts") or 0), cpu_percent=d.get("cpu_percent"),
                   rss_mib=d.get("rss_mib"), in_flight=int(d.get("in_flight") or 0),
                   message=str(d.get("message") or ""))

    def __repr__(self) -> str:
        return f"<InstanceStatus {self.id} pid={self.pid} {self.state} restarts={self.restarts}>"


@dataclass(frozen=True, repr=False)
class DeploymentStatus(_View):
    name: str = ""
    endpoint_name: str = ""
    state: str = ""
    model: str = ""
    model_version: str | None = None
    instance_type: str | None = None
    instance_count: int = 0
    instances: list[InstanceStatus] = field(default_factory=list)
    traffic: int = 0
    mirror: int = 0
    stats: StatsWindow | None = None
    message: str = ""
    _nested: ClassVar[dict[str, str]] = {"instances": "InstanceStatus", "stats": "StatsWindow"}
    _columns: ClassVar[tuple[str, ...]] = ("name", "state", "model_version", "instance_type", "instance_count",
                                           "traffic", "mirror")

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], *, traffic: int = 0, mirror: int = 0,
                    stats: StatsWindow | None = None) -> "DeploymentStatus":
        """From a deployment as ``GET .../deployments/{name}`` returns it (spec, state and live instances)."""
        live = [*(rec.get("instances") or []), *(rec.get("pending_instances") or [])]
        return cls(
            name=str(rec.get("name", "")), endpoint_name=str(rec.get("endpoint_name", "")),
            state=str(rec.get("provisioning_state", "")), model=str(rec.get("model", "")),
            model_version=rec.get("model_version"), instance_type=rec.get("instance_type"),
            instance_count=int(rec.get("instance_count") or 0),
            instances=[InstanceStatus.from_describe(i) for i in live],
            traffic=traffic, mirror=mirror, stats=stats, message=str(rec.get("message") or ""),
        )

    @property
    def ready_instances(self) -> int:
        return sum(1 for i in self.instances if i.ready)

    def __repr__(self) -> str:
        return (f"<DeploymentStatus {self.endpoint_name}/{self.name} {self.state} {self.model_version or self.model} "
                f"{self.ready_instances}/{len(self.instances)} ready traffic={self.traffic}%"
                + (f" mirror={self.mirror}%" if self.mirror else "") + ">")


@dataclass(frozen=True, repr=False)
class EndpointStatus(_View):
    name: str = ""
    kind: str = "online"
    auth_mode: str | None = None
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    scoring_uri: str = ""
    description: str | None = None
    deployments: list[DeploymentStatus] = field(default_factory=list)
    default_deployment: str | None = None
    state: str = ""
    _nested: ClassVar[dict[str, str]] = {"deployments": "DeploymentStatus"}
    _columns: ClassVar[tuple[str, ...]] = ("name", "kind", "auth_mode", "traffic", "mirror_traffic", "scoring_uri")

    def deployment(self, name: str) -> DeploymentStatus:
        for d in self.deployments:
            if d.name == name:
                return d
        raise KeyError(f"endpoint {self.name!r} has no deployment {name!r}")

    def __repr__(self) -> str:
        deps = ", ".join(d.name for d in self.deployments) or "no deployments"
        extra = f" traffic={self.traffic}" if self.kind == "online" else f" default={self.default_deployment}"
        return f"<EndpointStatus {self.kind} {self.name} ({deps}){extra}>"


@dataclass(frozen=True, repr=False)
class Event(_View):
    id: int = 0
    ts: float = 0.0
    reason: str = ""
    message: str = ""
    endpoint: str | None = None
    deployment: str | None = None
    job: str | None = None
    instance: str | None = None
    level: str = "info"
    _columns: ClassVar[tuple[str, ...]] = ("id", "ts", "level", "reason", "message")

    @property
    def scope(self) -> str:
        return "/".join(x for x in (self.endpoint, self.deployment, self.job, self.instance) if x)

    def __repr__(self) -> str:
        return f"<Event #{self.id} {_when(self.ts)} {self.scope or 'host'} {self.reason}: {self.message}>"


@dataclass(frozen=True, repr=False)
class EventPage(_View):
    """Events after a cursor, ascending; pass ``cursor`` back as ``after`` for the next page."""

    events: list[Event] = field(default_factory=list)
    cursor: int = 0
    more: bool = False
    _nested: ClassVar[dict[str, str]] = {"events": "Event"}

    def __iter__(self) -> Any:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"<EventPage {len(self.events)} events cursor={self.cursor} more={self.more}>"


@dataclass(frozen=True, repr=False)
class JobProgress(_View):
    id: str = ""
    endpoint: str = ""
    deployment: str = ""
    state: str = ""
    done: bool = False
    mini_batches_done: int = 0
    mini_batches_total: int = 0
    rows: int = 0
    rows_per_s: float | None = None
    eta_s: float | None = None
    failed_files: dict[str, str] = field(default_factory=dict)
    error_count: int = 0
    output_path: str = ""
    created_at: float | None = None
    finished_at: float | None = None
    started_at: float | None = None
    message: str = ""
    queue_position: int | None = None
    _columns: ClassVar[tuple[str, ...]] = ("id", "endpoint", "deployment", "state", "mini_batches_done",
                                           "mini_batches_total", "rows", "rows_per_s", "error_count")

    @property
    def fraction(self) -> float | None:
        """Share of mini-batches done (0..1), None while the total is unknown."""
        return self.mini_batches_done / self.mini_batches_total if self.mini_batches_total else None

    def __repr__(self) -> str:
        rate = f", {self.rows_per_s:,.0f} rows/s" if self.rows_per_s else ""
        return (f"<JobProgress {self.id} {self.state} {self.mini_batches_done}/{self.mini_batches_total or '?'} "
                f"mini-batches, {self.rows} rows{rate}, {self.error_count} errors>")


@dataclass(frozen=True, repr=False)
class LogChunk(_View):
    """Text appended to an instance's log; pass ``offset`` back to get only what comes next."""

    text: str = ""
    offset: int = 0
    instance: str | None = None
    instances: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<LogChunk {self.instance or '-'} {len(self.text)} chars offset={self.offset}>"

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(self.instance or 'no instance')}</b><pre>{html.escape(self.text)}</pre>"


@dataclass(frozen=True, repr=False)
class HostStatus(_View):
    url: str = ""
    pid: int = 0
    version: str = ""
    home: str = ""
    uptime_s: float = 0.0

    def __repr__(self) -> str:
        return f"<HostStatus {self.url} pid={self.pid} v{self.version} up {self.uptime_s:.0f}s>"


@dataclass(frozen=True, repr=False)
class Snapshot(_View):
    """What one dashboard frame needs, in one call."""

    taken_at: float = 0.0
    host: HostStatus = field(default_factory=HostStatus)
    online_endpoints: list[EndpointStatus] = field(default_factory=list)
    batch_endpoints: list[EndpointStatus] = field(default_factory=list)
    jobs: list[JobProgress] = field(default_factory=list)
    events: EventPage = field(default_factory=EventPage)
    _nested: ClassVar[dict[str, str]] = {
        "host": "HostStatus", "online_endpoints": "EndpointStatus", "batch_endpoints": "EndpointStatus",
        "jobs": "JobProgress", "events": "EventPage",
    }

    def endpoint(self, name: str) -> EndpointStatus:
        for e in (*self.online_endpoints, *self.batch_endpoints):
            if e.name == name:
                return e
        raise KeyError(f"the snapshot holds no endpoint {name!r}")

    def __repr__(self) -> str:
        active = sum(1 for j in self.jobs if not j.done)
        return (f"<Snapshot {_when(self.taken_at)} {len(self.online_endpoints)} online, "
                f"{len(self.batch_endpoints)} batch endpoints, {active} active jobs, {len(self.events)} events>")


@dataclass(frozen=True, repr=False)
class InvokeResult(_View):
    """A scoring answer as a test panel shows it: never raised, whatever the status."""

    status_code: int = 0
    deployment: str | None = None
    request_id: str | None = None
    latency_ms: float = 0.0
    body: Any = None
    predictions: Any = None

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def __repr__(self) -> str:
        return (f"<InvokeResult {self.status_code} from {self.deployment or '-'} in {self.latency_ms:.1f} ms "
                f"request_id={self.request_id}>")


_VIEWS: dict[str, type[_View]] = {
    c.__name__: c for c in (StatsWindow, StatsSeries, InstanceStatus, DeploymentStatus, EndpointStatus, Event,
                            EventPage, JobProgress, LogChunk, HostStatus, Snapshot, InvokeResult)
}
