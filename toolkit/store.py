"""The state store: endpoints, deployments, keys, jobs and events in one SQLite file (WAL).

Only the host writes it (the CLI and SDK go through the host), so a single connection guarded
by a lock is enough; WAL keeps readers (tests, ``status`` after a crash) from blocking it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Conflict, NotFound

__all__ = ["Store", "Resource", "Event", "SCHEMA_VERSION", "PROVISIONING_STATES", "KINDS"]

SCHEMA_VERSION = 1
PROVISIONING_STATES = ("Creating", "Succeeded", "Failed", "Updating", "Deleting")
KINDS = ("online-endpoint", "online-deployment", "batch-endpoint", "batch-deployment")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL,          -- the endpoint's own name for endpoints
    name TEXT NOT NULL,
    spec TEXT NOT NULL,              -- JSON of the validated spec
    model_version TEXT,              -- resolved registry version (deployments)
    provisioning_state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, endpoint, name)
);
CREATE TABLE IF NOT EXISTS secrets (
    endpoint TEXT PRIMARY KEY,
    primary_key TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    token_secret TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    deployment TEXT NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,              -- inputs, overrides and the resolved settings
    output TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    progress TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS minibatches (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,             -- Pending, Completed, Failed
    attempts INTEGER NOT NULL DEFAULT 0,
    rows INTEGER NOT NULL DEFAULT 0,
    failed_files INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    level TEXT NOT NULL,
    endpoint TEXT,
    deployment TEXT,
    job TEXT,
    reason TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_scope ON events (endpoint, deployment, id);
CREATE INDEX IF NOT EXISTS events_job ON events (job, id);
"""


@dataclass
class Resource:
    kind: str
    endpoint: str
    name: str
    spec: dict[str, Any]
    provisioning_state: str
    model_version: str | None = None
    message: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.spec)
        out["provisioning_state"] = self.provisioning_state
        if self.kind.endswith("deployment"):
            out["model_version"] = self.model_version
        if self.message:
            out["message"] = self.message
        out["created_at"] = self.created_at
        out["updated_at"] = self.updated_at
        return out


@dataclass
class Event:
    id: int
    ts: float
    level: str
    reason: str
    message: str
    endpoint: str | None = None
    deployment: str | None = None
    job: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Store:
    path: Path
    _conn: sqlite3.Connection = field(init=False, repr=False)
    _lock: threading.RLock = field(init=False, repr=False, default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row["value"]) > SCHEMA_VERSION:
                raise Conflict(
                    f"{self.path} has schema version {row['value']}, newer than this toolkit's "
                    f"{SCHEMA_VERSION}; upgrade endpoints-toolkit"
                )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def schema_version(self) -> int:
        row = self._q("SELECT value FROM meta WHERE key='schema_version'")[0]
        return int(row["value"])

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _x(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    # --- resources ------------------------------------------------------------------------
    @staticmethod
    def _resource(row: sqlite3.Row) -> Resource:
        return Resource(
            kind=row["kind"], endpoint=row["endpoint"], name=row["name"], spec=json.loads(row["spec"]),
            provisioning_state=row["provisioning_state"], model_version=row["model_version"],
            message=row["message"], created_at=row["created_at"], updated_at=row["updated_at"],
        )

    def get(self, kind: str, endpoint: str, name: str | None = None) -> Resource:
        rows = self._q("SELECT * FROM resources WHERE kind=? AND endpoint=? AND name=?", (kind, endpoint, name or endpoint))
        if not rows:
            what = kind.replace("-", " ")
            label = f"{name!r} of endpoint {endpoint!r}" if name and name != endpoint else repr(endpoint)
            raise NotFound(f"{what} {label} does not exist")
        return self._resource(rows[0])

    def find(self, kind: str, endpoint: str, name: str | None = None) -> Resource | None:
        try:
            return self.get(kind, endpoint, name)
        except NotFound:
            return None

    def list(self, kind: str, endpoint: str | None = None) -> list[Resource]:
        if endpoint is None:
            rows = self._q("SELECT * FROM resources WHERE kind=? ORDER BY endpoint, name", (kind,))
        else:
            rows = self._q("SELECT * FROM resources WHERE kind=? AND endpoint=? ORDER BY name", (kind, endpoint))
        return [self._resource(r) for r in rows]

    def put(
        self, kind: str, endpoint: str, name: str, spec: dict[str, Any], provisioning_state: str,
        model_version: str | None = None, message: str = "",
    ) -> Resource:
        assert kind in KINDS and provisioning_state in PROVISIONING_STATES
        now = time.time()
        with self._lock:
            self._conn.execute(
                """INSERT INTO resources (kind, endpoint, name, spec, model_version, provisioning_state, message, created_at, updated_at)
                   VALUES (?,?,?,?,?,?,?,?,?)
                   ON CONFLICT (kind, endpoint, name) DO UPDATE SET spec=excluded.spec,
                   model_version=excluded.model_version, provisioning_state=excluded.provisioning_state,
                   message=excluded.message, updated_at=excluded.updated_at""",
                (kind, endpoint, name, json.dumps(spec), model_version, provisioning_state, message, now, now),
            )
        return self.get(kind, endpoint, name)

    def set_state(self, kind: str, endpoint: str, name: str, provisioning_state: str, message: str = "") -> None:
        assert provisioning_state in PROVISIONING_STATES
        self._x(
            "UPDATE resources SET provisioning_state=?, message=?, updated_at=? WHERE kind=? AND endpoint=? AND name=?",
            (provisioning_state, message, time.time(), kind, endpoint, name),
        )

    def delete(self, kind: str, endpoint: str, name: str | None = None) -> None:
        self._x("DELETE FROM resources WHERE kind=? AND endpoint=? AND name=?", (kind, endpoint, name or endpoint))

    def delete_children(self, kind: str, endpoint: str) -> None:
        self._x("DELETE FROM resources WHERE kind=? AND endpoint=?", (kind, endpoint))

    # --- secrets (never returned by show/list; only by get-credentials) --------------------
    def get_secrets(self, endpoint: str) -> dict[str, str] | None:
        rows = self._q("SELECT * FROM secrets WHERE endpoint=?", (endpoint,))
        return dict(rows[0]) if rows else None

    def put_secrets(self, endpoint: str, primary_key: str, secondary_key: str, token_secret: str) -> None:
        self._x(
            """INSERT INTO secrets VALUES (?,?,?,?,?) ON CONFLICT (endpoint) DO UPDATE SET
               primary_key=excluded.primary_key, secondary_key=excluded.secondary_key,
               token_secret=excluded.token_secret, updated_at=excluded.updated_at""",
            (endpoint, primary_key, secondary_key, token_secret, time.time()),
        )

    def delete_secrets(self, endpoint: str) -> None:
        self._x("DELETE FROM secrets WHERE endpoint=?", (endpoint,))

    # --- jobs -----------------------------------------------------------------------------
    @staticmethod
    def _job(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["spec"] = json.loads(d["spec"])
        d["progress"] = json.loads(d["progress"])
        return d

    def add_job(self, job_id: str, endpoint: str, deployment: str, state: str, spec: dict[str, Any], output: str) -> dict[str, Any]:
        self._x(
            "INSERT INTO jobs (id, endpoint, deployment, state, spec, output, created_at) VALUES (?,?,?,?,?,?,?)",
            (job_id, endpoint, deployment, state, json.dumps(spec), output, time.time()),
        )
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> dict[str, Any]:
        rows = self._q("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows:
            raise NotFound(f"job {job_id!r} does not exist")
        return self._job(rows[0])

    def list_jobs(self, endpoint: str | None = None, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if endpoint:
            sql += " AND endpoint=?"
            args.append(endpoint)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        return [self._job(r) for r in self._q(sql + " ORDER BY created_at, id", tuple(args))]

    def update_job(self, job_id: str, **fields: Any) -> None:
        allowed = {"state", "message", "progress", "started_at", "ended_at", "spec", "output"}
        bad = set(fields) - allowed
        assert not bad, bad
        sets, args = [], []
        for k, v in fields.items():
            sets.append(f"{k}=?")
            args.append(json.dumps(v) if k in ("progress", "spec") else v)
        self._x(f"UPDATE jobs SET {', '.join(sets)} WHERE id=?", (*args, job_id))

    def put_minibatch(self, job_id: str, idx: int, state: str, attempts: int = 0, rows: int = 0, failed_files: int = 0, error: str = "") -> None:
        self._x(
            """INSERT INTO minibatches VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (job_id, idx) DO UPDATE SET
               state=excluded.state, attempts=excluded.attempts, rows=excluded.rows,
               failed_files=excluded.failed_files, error=excluded.error, updated_at=excluded.updated_at""",
            (job_id, idx, state, attempts, rows, failed_files, error, time.time()),
        )

    def minibatches(self, job_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._q("SELECT * FROM minibatches WHERE job_id=? ORDER BY idx", (job_id,))]

    # --- events ---------------------------------------------------------------------------
    def add_event(
        self, reason: str, message: str, *, level: str = "info", endpoint: str | None = None,
        deployment: str | None = None, job: str | None = None,
    ) -> Event:
        ts = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events (ts, level, endpoint, deployment, job, reason, message) VALUES (?,?,?,?,?,?,?)",
                (ts, level, endpoint, deployment, job, reason, message),
            )
            return Event(cur.lastrowid or 0, ts, level, reason, message, endpoint, deployment, job)

    def events(
        self, *, endpoint: str | None = None, deployment: str | None = None, job: str | None = None,
        since_id: int = 0, limit: int = 100,
    ) -> list[Event]:
        sql, args = "SELECT * FROM events WHERE id>?", [since_id]
        for col, val in (("endpoint", endpoint), ("deployment", deployment), ("job", job)):
            if val is not None:
                sql += f" AND {col}=?"
                args.append(val)
        rows = self._q(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [
            Event(r["id"], r["ts"], r["level"], r["reason"], r["message"], r["endpoint"], r["deployment"], r["job"])
            for r in reversed(rows)
        ]

    def events_after(
        self, after: int, *, endpoint: str | None = None, deployment: str | None = None, job: str | None = None,
        limit: int = 100,
    ) -> tuple[list[Event], bool]:
        """The oldest ``limit`` events with id > ``after`` (ascending) and whether more remain:
        a poller that passes back the last id sees every event exactly once."""
        sql, args = "SELECT * FROM events WHERE id>?", [after]
        for col, val in (("endpoint", endpoint), ("deployment", deployment), ("job", job)):
            if val is not None:
                sql += f" AND {col}=?"
                args.append(val)
        rows = self._q(sql + " ORDER BY id LIMIT ?", (*args, limit + 1))
        events = [Event(r["id"], r["ts"], r["level"], r["reason"], r["message"], r["endpoint"], r["deployment"],
                        r["job"]) for r in rows[:limit]]
        return events, len(rows) > limit

