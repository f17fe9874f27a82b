"""The state store survives reopening (a host restart) and keeps its schema version."""

from __future__ import annotations

import sqlite3

import pytest

from toolkit.errors import Conflict, NotFound
from toolkit.store import SCHEMA_VERSION, Store


def test_resources_jobs_events_survive_reopen(tmp_path):
    path = tmp_path / "state.db"
    s = Store(path)
    s.put("online-endpoint", "churn", "churn", {"name": "churn"}, "Succeeded")
    s.put("online-deployment", "churn", "blue", {"name": "blue"}, "Creating", model_version="churn:1")
    s.set_state("online-deployment", "churn", "blue", "Failed", "boom")
    s.put_secrets("churn", "p", "s", "t")
    s.add_job("j1", "oj-sales", "forest", "Queued", {"input": "/x"}, "/out")
    s.put_minibatch("j1", 0, "Completed", attempts=1, rows=10)
    s.add_event("DeploymentCreating", "hello", endpoint="churn", deployment="blue")
    s.close()

    s = Store(path)
    assert s.schema_version == SCHEMA_VERSION
    dep = s.get("online-deployment", "churn", "blue")
    assert (dep.provisioning_state, dep.message, dep.model_version) == ("Failed", "boom", "churn:1")
    assert s.get_secrets("churn")["primary_key"] == "p"
    assert s.get_job("j1")["spec"] == {"input": "/x"}
    assert s.minibatches("j1")[0]["rows"] == 10
    assert [e.reason for e in s.events(endpoint="churn")] == ["DeploymentCreating"]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(NotFound, match="online deployment 'green' of endpoint 'churn' does not exist"):
        s.get("online-deployment", "churn", "green")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "state.db"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(Conflict, match="schema version 999"):
        Store(path)
