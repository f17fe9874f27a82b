"""The rules the CLI used to hold, now in the SDK: create never replaces, update changes only
what it is given, and applying specs shows a plan first.  Each is checked through the SDK and
through the real ``endpoints`` command that now stands on it, against a real host."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from toolkit.apply import ApplyPlan
from toolkit.errors import Conflict, InvalidSpec, NotFound
from toolkit.specs import BatchDeployment, BatchEndpoint, OnlineEndpoint, load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_create_refuses_to_overwrite_in_the_sdk_and_the_cli(workspace):
    home = workspace.home
    eps = workspace.online_endpoints
    eps.create(OnlineEndpoint(name="churn", description="first"))
    with pytest.raises(Conflict, match="online endpoint 'churn' already exists; use `update`"):
        eps.create({"name": "churn", "description": "second"})
    assert eps.get("churn")["description"] == "first"  # the refused create changed nothing

    workspace.batch_endpoints.create(BatchEndpoint(name="oj-sales"))
    with pytest.raises(Conflict, match="batch endpoint 'oj-sales' already exists"):
        workspace.batch_endpoints.create(BatchEndpoint(name="oj-sales", description="again"))
    spec = load_spec(BatchDeployment, EXAMPLES / "oj-sales-deployment.yml")
    workspace.batch_deployments.create(spec, set_default=True)
    with pytest.raises(Conflict, match="batch deployment 'forest' of 'oj-sales' already exists"):
        workspace.batch_deployments.create(spec)
    # create_or_update still replaces, as before
    assert workspace.online_endpoints.create_or_update({"name": "churn", "description": "second"})["description"] == "second"

    out = run_cli("online-endpoint", "create", "-f", str(EXAMPLES / "churn-endpoint.yml"), home=home)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: online endpoint 'churn' already exists; use `update` to change it" in out.stderr
    assert eps.get("churn")["description"] == "second"


def test_update_changes_only_what_it_is_given(workspace):
    home = workspace.home
    eps = workspace.online_endpoints
    eps.create(load_spec(OnlineEndpoint, EXAMPLES / "churn-endpoint.yml"))

    updated = eps.update("churn", auth_mode="token", set=["tags.owner=ops"])
    assert updated["auth_mode"] == "token"
    assert updated["tags"] == {"team": "retention", "owner": "ops"}
    assert updated["description"].startswith("Customer churn scores")  # untouched fields stay

    with pytest.raises(InvalidSpec, match="nothing to update"):
        eps.update("churn")
    with pytest.raises(InvalidSpec, match="auth_mode"):
        eps.update("churn", auth_mode="password")
    with pytest.raises(NotFound):
        eps.update("nope", description="x")
    assert eps.get("churn")["auth_mode"] == "token"  # the refused updates changed nothing

    workspace.batch_endpoints.create({"name": "oj-sales", "description": "weekly"})
    assert workspace.batch_endpoints.update("oj-sales", set=["tags.team=forecast"])["tags"] == {"team": "forecast"}
    assert workspace.batch_endpoints.get("oj-sales")["description"] == "weekly"

    out = run_cli("online-endpoint", "update", "--name", "churn", "--set", "auth_mode=none", "-o", "json", home=home)
    assert out.returncode == 0, out.stderr
    assert eps.get("churn")["auth_mode"] == "none"
    assert eps.get("churn")["tags"] == {"team": "retention", "owner": "ops"}


def test_apply_shows_a_plan_and_a_dry_run_changes_nothing(workspace):
    endpoint = BatchEndpoint(name="oj-sales", description="weekly")
    deployment = load_spec(BatchDeployment, EXAMPLES / "oj-sales-deployment.yml")

    plan = workspace.apply([endpoint, deployment], dry_run=True)
    assert isinstance(plan, ApplyPlan) and not plan.applied
    assert [(c.action, c.label) for c in plan.changes] == [
        ("create", "batch endpoint oj-sales"), ("create", "batch deployment forest of oj-sales")]
    assert plan.live == []  # nothing exists yet, so nothing live would change
    with pytest.raises(NotFound):
        workspace.batch_endpoints.get("oj-sales")

    applied: list[str] = []
    done = workspace.apply(plan, on_applied=lambda change: applied.append(change.label))
    assert done.applied and applied == ["batch endpoint oj-sales", "batch deployment forest of oj-sales"]
    assert workspace.batch_endpoints.get("oj-sales")["defaults"]["deployment_name"] == "forest"

    # Applying a changed deployment again: an update of something that exists, so it is live.
    changed = deployment.model_copy(update={"mini_batch_size": 8})
    again = workspace.apply(changed, dry_run=True)
    assert [(c.action, c.details) for c in again.changes] == [("update", ["mini_batch_size: 4 -> 8"])]
    assert again.live == ["batch deployment forest of oj-sales"]
    assert "update batch deployment forest of oj-sales\n    mini_batch_size: 4 -> 8" == again.describe()
    assert workspace.batch_deployments.get("oj-sales", "forest")["mini_batch_size"] == 4

    with pytest.raises(InvalidSpec, match="cannot apply a dict"):
        workspace.apply({"name": "x"}, dry_run=True)
