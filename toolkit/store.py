"""The state store: endpoints, deployments, keys, jobs and events in one SQLite file (WAL).

Only the host writes it (the CLI and SDK go through the host), so a single connection guarded
by a lock is enough; WAL keeps readers (tests, ``status`` after a crash) from blocking it.

The database and its WAL/SHM files are 0600 (SQLite gives the WAL and SHM the mode of the
database file), and endpoint keys and token-signing secrets are sealed with the key file beside
it (:mod:`toolkit.secretbox`): a copy of ``state.db`` alone holds no working key.  Rows written
in plain text by an older version are sealed when the store opens.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Conflict, NotFound, SecretUnreadable
from .secretbox import KEY_FILE_NAME, SecretBox

__all__ = ["Store", "Resource", "Event", "SCHEMA_VERSION", "PROVISIONING_STATES", "KINDS"]

SCHEMA_VERSION = 1
SECRET_FIELDS = ("primary_key", "secondary_key", "token_secret")
log = logging.getLogger("toolkit.store")
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
    secret_box: SecretBox | None = field(default=None, repr=False)  # default: the key file beside path
    _conn: sqlite3.Connection = field(init=False, repr=False)
    _lock: threading.RLock = field(init=False, repr=False, default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._make_files_private()
        if self.secret_box is None:
            self.secret_box = SecretBox.at(self.path.parent / KEY_FILE_NAME)
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
            self._seal_plaintext_secrets()
            self._warn_unreadable_secrets()

    def _make_files_private(self) -> None:
        """Create the database 0600 before SQLite does (its WAL and SHM copy that mode) and
        take group/other bits off existing files (a home made by an older version)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        for p in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(p, 0o600)

    def _seal_plaintext_secrets(self) -> None:
        """Seal the secrets an older version stored in plain text, and leave no copy behind."""
        box = self.secret_box
        assert box is not None
        rows = self._conn.execute("SELECT * FROM secrets").fetchall()
        plain = [r for r in rows if not all(box.is_sealed(r[f]) for f in SECRET_FIELDS)]
        if not plain:
            return
        # secure_delete zeroes the space the old values leave in their pages; VACUUM rewrites
        # the file and the TRUNCATE checkpoint empties the WAL, so no plaintext copy survives.
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for r in plain:
                sealed = [r[f] if box.is_sealed(r[f]) else box.seal(r[f]) for f in SECRET_FIELDS]
                self._conn.execute(
                    "UPDATE secrets SET primary_key=?, secondary_key=?, token_secret=? WHERE endpoint=?",
                    (*sealed, r["endpoint"]),
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("VACUUM")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.execute("PRAGMA secure_delete=OFF")
        log.info("sealed the plain-text credentials of %d endpoint(s) in %s", len(plain), self.path)

    def _warn_unreadable_secrets(self) -> None:
        unreadable = [r["endpoint"] for r in self._conn.execute("SELECT * FROM secrets").fetchall()
                      if self._open_row(r) is None]
        if unreadable:
            log.error(
                "the credentials of endpoint(s) %s do not open with %s (was the key file replaced or "
                "lost?); those endpoints refuse every request until `endpoints online-endpoint "
                "regenerate-keys` makes new ones", ", ".join(unreadable), self.path.parent / KEY_FILE_NAME,
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def _open_row(self, row: sqlite3.Row) -> dict[str, Any] | None:
        box = self.secret_box
        assert box is not None
        out = dict(row)
        try:
            for f in SECRET_FIELDS:
                out[f] = box.open(row[f])
        except SecretUnreadable:
            return None
        return out

    def get_secrets(self, endpoint: str) -> dict[str, str] | None:
        """The endpoint's keys and token secret in plain text; None if it has none, or if they
        do not open with the key file (then ``regenerate-keys`` makes new ones)."""
        rows = self._q("SELECT * FROM secrets WHERE endpoint=?", (endpoint,))
        return self._open_row(rows[0]) if rows else None

    def put_secrets(self, endpoint: str, primary_key: str, secondary_key: str, token_secret: str) -> None:
        box = self.secret_box
        assert box is not None
        self._x(
            """INSERT INTO secrets VALUES (?,?,?,?,?) ON CONFLICT (endpoint) DO UPDATE SET
               primary_key=excluded.primary_key, secondary_key=excluded.secondary_key,
               token_secret=excluded.token_secret, updated_at=excluded.updated_at""",
            (endpoint, box.seal(primary_key), box.seal(secondary_key), box.seal(token_secret), time.time()),
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

