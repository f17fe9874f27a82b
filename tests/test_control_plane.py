"""The control plane's rules, called directly: no HTTP, no instance processes.

The ControlPlane runs over a real Store and the demo model registry.  Batch jobs go to a real
BatchService that is never started (its local cluster is fully booked, so a submitted job
stays Queued and no worker process starts).  The online service's hooks are a small recorder,
``ProvisionAtOnce``: a real implementation of the hook protocol (the control plane's dependency,
injected) that records each call and provisions a deployment at once to a chosen state, instead
of starting instance processes; the online service itself is tested in tests/test_online_*.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from toolkit.batch.service import BatchService
from toolkit.batch.testing import make_context, register_batch_deployment
from toolkit.control import ControlPlane
from toolkit.errors import Conflict, InvalidSpec, NotFound
from toolkit.home import Home
from toolkit.context import HostContext, HostSettings
from toolkit.specs import MAX_DEPLOYMENTS_PER_ENDPOINT, BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint

OE, OD, BE, BD = "online-endpoint", "online-deployment", "batch-endpoint", "batch-deployment"


class ProvisionAtOnce:
    """The online service's hooks as the control plane calls them, recorded; ``deploy`` sets
    the stored state to ``outcome`` at once (None: the deployment stays Creating/Updating)."""

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.calls: list[tuple[str, ...]] = []
        self.outcome: str | None = "Succeeded"

    async def deploy(self, endpoint: str, name: str) -> None:
        self.calls.append(("deploy", endpoint, name))
        if self.outcome is not None:
            self.ctx.store.set_state(OD, endpoint, name, self.outcome)

    async def undeploy(self, endpoint: str, name: str) -> None:
        self.calls.append(("undeploy", endpoint, name))

    async def endpoint_changed(self, endpoint: str) -> None:
        self.calls.append(("endpoint_changed", endpoint))

    async def endpoint_deleted(self, endpoint: str) -> None:
        self.calls.append(("endpoint_deleted", endpoint))

    def describe(self, endpoint: str, name: str) -> dict[str, Any]:
        return {"instances": []}

    def logs(self, endpoint: str, name: str, lines: int) -> str:
        return f"last {lines} lines of {endpoint}/{name}"

    def stats(self, endpoint: str | None = None) -> dict[str, Any]:
        return {"deployments": {}}


@pytest.fixture
def ctx(home: Home) -> HostContext:
    c = make_context(home)
    c.online = ProvisionAtOnce(c)  # type: ignore[assignment]
    c.batch = BatchService(c, capacity=1, idle_timeout=2)  # never started: nothing runs
    c.batch.compute.book(1)  # the local cluster is full, so a submitted job waits in the queue
    yield c
    c.store.close()


@pytest.fixture
def plane(ctx: HostContext) -> ControlPlane:
    return ControlPlane(ctx)


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(fn())


def deployment(endpoint: str, name: str, model: str = "models:/churn/1", **fields: Any) -> OnlineDeployment:
    return OnlineDeployment(name=name, endpoint_name=endpoint, model=model, **fields)


# --- online endpoints --------------------------------------------------------------------


def test_create_mints_keys_and_refuses_to_overwrite(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        view = await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        assert view["scoring_uri"].endswith("/endpoints/churn/score") and view["deployments"] == []
        keys = plane.credentials("churn")
        assert keys["auth_mode"] == "key" and keys["primaryKey"] and keys["primaryKey"] != keys["secondaryKey"]
        with pytest.raises(Conflict, match="online endpoint 'churn' already exists; use `update`"):
            await plane.create_online_endpoint(OnlineEndpoint(name="churn", auth_mode="token"))
        assert ctx.store.get(OE, "churn").spec["auth_mode"] == "key"
        # update (put) keeps the keys: they are minted once, for a new endpoint
        await plane.put_online_endpoint("churn", OnlineEndpoint(name="churn", description="v2"))
        assert plane.credentials("churn")["primaryKey"] == keys["primaryKey"]
        assert ctx.online.calls == [("endpoint_changed", "churn")] * 2  # type: ignore[attr-defined]

    run(main)


def test_name_in_the_address_must_match_the_spec(plane: ControlPlane) -> None:
    with pytest.raises(InvalidSpec, match=r"name: 'other' does not match the name in the URL \('churn'\)"):
        run(lambda: plane.put_online_endpoint("churn", OnlineEndpoint(name="other")))
    with pytest.raises(NotFound):
        plane.online_endpoint("churn")


def test_traffic_names_only_existing_deployments_and_an_update_keeps_it(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        with pytest.raises(InvalidSpec, match="traffic.blue: endpoint 'churn' has no deployment named 'blue'; "
                                              "it has no deployments yet"):
            await plane.put_online_endpoint("churn", OnlineEndpoint(name="churn", traffic={"blue": 100}))
        assert ctx.store.find(OE, "churn") is None and ctx.store.get_secrets("churn") is None
        await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        await plane.put_online_deployment("churn", "blue", deployment("churn", "blue"))
        # A zero entry naming a typo is refused too: it would be saved as if it meant something.
        with pytest.raises(InvalidSpec, match="mirror_traffic.bleu: .* its deployments: blue"):
            await plane.set_traffic("churn", mirror_traffic={"bleu": 0})
        view = await plane.set_traffic("churn", traffic={"blue": 100})
        assert view["traffic"] == {"blue": 100} and view["deployments"] == ["blue"]
        # A spec without traffic (a description change) keeps the traffic set before.
        await plane.put_online_endpoint("churn", OnlineEndpoint(name="churn", description="new words"))
        assert ctx.store.get(OE, "churn").spec["traffic"] == {"blue": 100}

    run(main)


def test_a_failed_deployment_takes_no_traffic(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        await plane.put_online_deployment("churn", "blue", deployment("churn", "blue"))
        ctx.online.outcome = "Failed"  # type: ignore[attr-defined]
        await plane.put_online_deployment("churn", "green", deployment("churn", "green"))
        with pytest.raises(InvalidSpec, match="traffic.green: deployment 'green' is Failed and cannot take traffic"):
            await plane.set_traffic("churn", traffic={"blue": 50, "green": 50})
        assert (await plane.set_traffic("churn", traffic={"blue": 100, "green": 0}))["traffic"] == {"blue": 100, "green": 0}

    run(main)


def test_auth_mode_none_only_on_loopback(home: Home) -> None:
    ctx = make_context(home)
    ctx.settings = HostSettings(host="0.0.0.0")
    ctx.online = ProvisionAtOnce(ctx)  # type: ignore[assignment]
    try:
        with pytest.raises(InvalidSpec, match="auth_mode: 'none' is only allowed when the host listens on loopback"):
            run(lambda: ControlPlane(ctx).put_online_endpoint("open", OnlineEndpoint(name="open", auth_mode="none")))
        assert ctx.store.find(OE, "open") is None
    finally:
        ctx.store.close()


def test_regenerating_keys_and_tokens(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="keyed"))
        before = plane.credentials("keyed")
        assert await plane.regenerate_keys("keyed", "primary") == {"name": "keyed", "regenerated": "primary"}
        after = plane.credentials("keyed")
        assert after["primaryKey"] != before["primaryKey"] and after["secondaryKey"] == before["secondaryKey"]
        await plane.create_online_endpoint(OnlineEndpoint(name="tokened", auth_mode="token"))
        token = plane.credentials("tokened")
        assert token["auth_mode"] == "token" and token["accessToken"]
        await plane.regenerate_keys("tokened", "token")
        assert [e.reason for e in ctx.store.events(endpoint="tokened")][-1] == "KeyRegenerated"

    run(main)


# --- online deployments ------------------------------------------------------------------


def test_deployment_pins_the_model_version_its_alias_means_now(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        view = await plane.put_online_deployment("churn", "blue", deployment("churn", "blue", "models:/churn@challenger"))
        assert view["model_version"] == ctx.registry.resolve("models:/churn@challenger").label == "churn:2"
        assert view["provisioning_state"] == "Succeeded" and view["instances"] == []
        assert ctx.online.calls[-1] == ("deploy", "churn", "blue")  # type: ignore[attr-defined]
        with pytest.raises(NotFound, match="^model: .*no alias 'nope'"):
            await plane.put_online_deployment("churn", "green", deployment("churn", "green", "models:/churn@nope"))
        assert ctx.store.find(OD, "churn", "green") is None
        with pytest.raises(Conflict, match="deployment 'blue' of online endpoint 'churn' already exists"):
            await plane.create_online_deployment(deployment("churn", "blue"))
        with pytest.raises(NotFound):
            await plane.put_online_deployment("ghost", "blue", deployment("ghost", "blue"))

    run(main)


def test_code_folder_and_script_must_exist(plane: ControlPlane, tmp_path: Path) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        missing = {"code": str(tmp_path / "nowhere"), "scoring_script": "score.py"}
        with pytest.raises(InvalidSpec, match="code_configuration.code: folder .*nowhere.* does not exist"):
            await plane.put_online_deployment("churn", "blue", deployment("churn", "blue", code_configuration=missing))
        (tmp_path / "code").mkdir()
        no_script = {"code": str(tmp_path / "code"), "scoring_script": "score.py"}
        with pytest.raises(InvalidSpec, match="code_configuration.scoring_script: .*score.py.* does not exist"):
            await plane.put_online_deployment("churn", "blue", deployment("churn", "blue", code_configuration=no_script))

    run(main)


def test_a_busy_deployment_waits_and_the_endpoint_holds_at_most_the_limit(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="many"))
        ctx.online.outcome = None  # type: ignore[attr-defined]  # provisioning never finishes
        await plane.put_online_deployment("many", "dep-0", deployment("many", "dep-0"))
        with pytest.raises(Conflict, match="deployment 'dep-0' is Creating; wait for it to finish"):
            await plane.put_online_deployment("many", "dep-0", deployment("many", "dep-0", instance_count=2))
        ctx.online.outcome = "Succeeded"  # type: ignore[attr-defined]
        for i in range(1, MAX_DEPLOYMENTS_PER_ENDPOINT):
            await plane.put_online_deployment("many", f"dep-{i}", deployment("many", f"dep-{i}"))
        with pytest.raises(Conflict, match=f"already has {MAX_DEPLOYMENTS_PER_ENDPOINT} deployments"):
            await plane.put_online_deployment("many", "extra", deployment("many", "extra"))
        # An update of an existing deployment is no new deployment: the limit does not apply.
        await plane.put_online_deployment("many", "dep-1", deployment("many", "dep-1", model="models:/churn/2"))
        assert len(plane.online_deployments("many")) == MAX_DEPLOYMENTS_PER_ENDPOINT

    run(main)


def test_deleting_deployments_and_the_endpoint_cascades(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        for name in ("blue", "green"):
            await plane.put_online_deployment("churn", name, deployment("churn", name))
        await plane.set_traffic("churn", traffic={"blue": 100, "green": 0}, mirror_traffic={"green": 10})
        with pytest.raises(Conflict, match="'blue' has 100% live traffic; move its traffic"):
            await plane.delete_online_deployment("churn", "blue")
        with pytest.raises(Conflict, match="'green' receives mirrored traffic"):
            await plane.delete_online_deployment("churn", "green")
        # Live traffic to green ends its mirroring.
        assert (await plane.set_traffic("churn", traffic={"blue": 0, "green": 100}))["mirror_traffic"] == {}
        assert await plane.delete_online_deployment("churn", "blue") == {"endpoint": "churn", "name": "blue", "deleted": True}
        assert ctx.store.get(OE, "churn").spec["traffic"] == {"green": 100}  # the zero entry went with it
        assert ("undeploy", "churn", "blue") in ctx.online.calls  # type: ignore[attr-defined]

        assert await plane.delete_online_endpoint("churn") == {"name": "churn", "deleted": True}
        assert ctx.store.list(OD, "churn") == [] and ctx.store.find(OE, "churn") is None
        assert ctx.store.get_secrets("churn") is None
        assert ctx.online.calls[-1] == ("endpoint_deleted", "churn")  # type: ignore[attr-defined]
        assert [e.reason for e in ctx.store.events(endpoint="churn")][-1] == "EndpointDeleted"

    run(main)


def test_read_side(plane: ControlPlane) -> None:
    async def main() -> None:
        await plane.create_online_endpoint(OnlineEndpoint(name="churn"))
        await plane.put_online_deployment("churn", "blue", deployment("churn", "blue"))
        assert [e["name"] for e in plane.online_endpoints()] == ["churn"]
        assert plane.online_deployment("churn", "blue")["events"][-1]["reason"] == "DeploymentCreating"
        assert plane.deployment_logs("churn", "blue", 5)["logs"] == "last 5 lines of churn/blue"
        assert {m["name"] for m in await plane.models()} >= {"churn", "oj-sales"}
        status = plane.status()
        assert (status["online_endpoints"], status["online_deployments"], status["jobs"]) == (1, 1, {})

    run(main)


# --- batch -------------------------------------------------------------------------------


def test_batch_default_deployment_rules(plane: ControlPlane, ctx: HostContext) -> None:
    async def main() -> None:
        await plane.create_batch_endpoint(BatchEndpoint(name="oj-batch"))
        with pytest.raises(InvalidSpec, match="defaults.deployment_name: endpoint 'oj-batch' has no deployment named 'x'"):
            await plane.put_batch_endpoint("oj-batch", BatchEndpoint(name="oj-batch", defaults={"deployment_name": "x"}))
        model = "models:/oj-sales@production"
        blue = await plane.put_batch_deployment("oj-batch", "blue", BatchDeployment(name="blue", endpoint_name="oj-batch", model=model))
        assert blue["model_version"] == "oj-sales:1"
        assert plane.batch_endpoint("oj-batch")["defaults"]["deployment_name"] == "blue"  # the first one
        await plane.put_batch_deployment("oj-batch", "green", BatchDeployment(name="green", endpoint_name="oj-batch", model=model))
        assert plane.batch_endpoint("oj-batch")["defaults"]["deployment_name"] == "blue"  # the second is not
        await plane.put_batch_deployment("oj-batch", "green", BatchDeployment(name="green", endpoint_name="oj-batch", model=model),
                                         set_default=True)
        # An endpoint update that does not name a default keeps it.
        await plane.put_batch_endpoint("oj-batch", BatchEndpoint(name="oj-batch", description="weekly"))
        assert plane.batch_endpoint("oj-batch")["defaults"]["deployment_name"] == "green"
        with pytest.raises(Conflict, match="'green' is the default of 'oj-batch'; make another one the default first"):
            await plane.delete_batch_deployment("oj-batch", "green")
        await plane.delete_batch_deployment("oj-batch", "blue")
        await plane.delete_batch_deployment("oj-batch", "green")  # the last one may go, and the default with it
        assert plane.batch_endpoint("oj-batch")["defaults"]["deployment_name"] is None

    run(main)


def test_job_submission_and_deletes_that_wait_for_active_jobs(
    plane: ControlPlane, ctx: HostContext, tmp_path: Path,
) -> None:
    from toolkit.demo.data import write_oj_weekly_files

    data = tmp_path / "weekly"
    write_oj_weekly_files(data, weeks=1, stores=1)
    register_batch_deployment(ctx, "oj-batch", "blue", "models:/oj-sales/1")
    register_batch_deployment(ctx, "bare-batch", "blue", "models:/oj-sales/1", default=False)
    assert plane.batch_endpoint("bare-batch")["defaults"]["deployment_name"] is None

    async def main() -> None:
        with pytest.raises(InvalidSpec, match="deployment_name: batch endpoint 'bare-batch' has no default deployment"):
            await plane.submit_job("bare-batch", str(data))
        with pytest.raises(InvalidSpec, match="input: 'weekly' is relative; give an absolute path"):
            await plane.submit_job("oj-batch", "weekly")
        with pytest.raises(InvalidSpec, match="output: 'out' is relative"):
            await plane.submit_job("oj-batch", str(data), output="out")
        with pytest.raises(NotFound):
            await plane.submit_job("oj-batch", str(data), deployment_name="ghost")
        job = await plane.submit_job("oj-batch", str(data))
        assert (job["endpoint"], job["deployment"], job["state"]) == ("oj-batch", "blue", "Queued")
        assert [j["id"] for j in plane.jobs("oj-batch", "Queued")] == [job["id"]] and plane.jobs(state="Running") == []
        with pytest.raises(Conflict, match="'blue' has 1 active job"):
            await plane.delete_batch_deployment("oj-batch", "blue")
        with pytest.raises(Conflict, match=f"batch endpoint 'oj-batch' has 1 active job.*{job['id']}"):
            await plane.delete_batch_endpoint("oj-batch")
        assert (await plane.cancel_job(job["id"]))["state"] == "Canceled"
        assert plane.status()["jobs"] == {"Canceled": 1}
        assert await plane.delete_batch_endpoint("oj-batch") == {"name": "oj-batch", "deleted": True}
        assert ctx.store.list(BD, "oj-batch") == []  # its deployments went with it
        with pytest.raises(NotFound):
            await plane.cancel_job("no-such-job")

    run(main)
