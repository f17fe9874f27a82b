"""The route table on its own: weighted choice, failed deployments, the mirror, and X-Deployment
pinning through the gateway's real deployment lookup (a never-started service, no process)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from test_unit_admission import add_deployment, svc  # noqa: F401  (svc is a fixture)
from toolkit.online.gateway import Gateway, _Answer, _Incoming
from toolkit.online.router import DEPLOYMENT_HEADERS, RouteTable
from toolkit.online.service import OnlineService

N = 20_000


def shares(table: RouteTable, seed: int = 7) -> dict[str | None, float]:
    rnd = random.Random(seed)
    counts = Counter(table.pick(rnd) for _ in range(N))
    return {k: v / N for k, v in counts.items()}


def test_weighted_choice_follows_the_traffic_percentages() -> None:
    table = RouteTable.build("shop", {"traffic": {"blue": 90, "green": 10, "idle": 0}}, None)
    got = shares(table)
    assert set(got) == {"blue", "green"}  # 0% never chosen
    assert got["blue"] == pytest.approx(0.9, abs=0.02) and got["green"] == pytest.approx(0.1, abs=0.02)
    assert table.live == ("blue", "green") and table.primary() == "blue"
    # The same seed gives the same sequence: the choice depends on the random draw alone.
    assert [table.pick(random.Random(1)) for _ in range(3)] == [table.pick(random.Random(1))] * 3


def test_weights_need_not_sum_to_one_hundred_and_edges_are_exact() -> None:
    table = RouteTable.build("shop", {"traffic": {"a-dep": 1, "b-dep": 3}}, None)
    got = shares(table)
    assert got["a-dep"] == pytest.approx(0.25, abs=0.02)

    class Edge(random.Random):
        def __init__(self, x: float) -> None:
            super().__init__()
            self.x = x

        def random(self) -> float:
            return self.x

    # cumulative weights [1, 4]: draws in [0, 1/4) pick a-dep, [1/4, 1) pick b-dep
    assert table.pick(Edge(0.0)) == "a-dep"
    assert table.pick(Edge(0.2499)) == "a-dep"
    assert table.pick(Edge(0.25)) == "b-dep"
    assert table.pick(Edge(0.9999)) == "b-dep"


def test_no_traffic_picks_nothing_and_a_tie_has_a_stable_primary() -> None:
    empty = RouteTable.build("shop", {"traffic": {"blue": 0}}, None)
    assert empty.pick() is None and empty.primary() is None and empty.live == ()
    assert RouteTable.build("shop", {}, None).pick() is None
    tie = RouteTable.build("shop", {"traffic": {"blue": 50, "green": 50}}, None)
    assert tie.primary() == "green"  # equal shares: the name breaks the tie, the same way every time


def test_a_failed_deployment_gives_its_share_to_the_others_and_says_why() -> None:
    table = RouteTable.build("shop", {"traffic": {"blue": 50, "green": 50}}, None,
                             failed={"green": "model load failed"})
    assert set(shares(table)) == {"blue"} and table.live == ("blue",)
    assert table.unhealthy == "green: model load failed"
    assert table.traffic == {"blue": 50, "green": 50}  # the stored split is unchanged
    all_failed = RouteTable.build("shop", {"traffic": {"blue": 100}}, None, failed={"blue": "boom"})
    assert all_failed.pick() is None and all_failed.unhealthy == "blue: boom"
    # A failed deployment without traffic is not "unhealthy traffic".
    assert RouteTable.build("shop", {"traffic": {"blue": 100, "green": 0}}, None,
                            failed={"green": "x"}).unhealthy == ""


def test_mirror_copies_its_share_of_requests() -> None:
    table = RouteTable.build("shop", {"traffic": {"blue": 100}, "mirror_traffic": {"green": 20}}, None)
    assert (table.mirror, table.mirror_share) == ("green", 0.2)
    rnd = random.Random(3)
    copied = sum(table.mirror_now(rnd) == "green" for _ in range(N)) / N
    assert copied == pytest.approx(0.2, abs=0.02)
    assert set(shares(table)) == {"blue"}  # the mirror takes no live traffic
    off = RouteTable.build("shop", {"traffic": {"blue": 100}, "mirror_traffic": {"green": 0}}, None)
    assert off.mirror is None and off.mirror_now() is None


def test_auth_mode_and_secrets_are_carried_but_never_shown() -> None:
    secrets = {"primary_key": "p-secret", "secondary_key": "s-secret", "token_secret": "t"}
    table = RouteTable.build("shop", {"traffic": {"blue": 100}, "auth_mode": "aml_token"}, secrets)
    assert table.auth_mode == "aml_token" and table.secrets == secrets
    assert "secret" not in repr(table)
    assert RouteTable.build("shop", {"auth_mode": "aml_token"}, None, auth_mode="key").auth_mode == "key"
    assert RouteTable.build("shop", {}, None).auth_mode == "key"


def request(*headers: tuple[str, str]) -> _Incoming:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    # ASGI servers hand over header names in lower case.
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return _Incoming({"method": "POST", "headers": raw}, receive)


def test_deployment_header_pins_the_request_and_bypasses_the_weights(svc: OnlineService) -> None:  # noqa: F811
    blue = add_deployment(svc, "shop", "blue")
    green = add_deployment(svc, "shop", "green")
    table = RouteTable.build("shop", {"traffic": {"blue": 100, "green": 0}}, None)
    gw: Gateway = svc.gateway
    assert gw._deployment(table, request()) == (blue, True)  # weights: all traffic to blue
    # Pinned: green serves though it has 0% (Azure's header name too; the first header listed wins).
    assert DEPLOYMENT_HEADERS == ("x-deployment", "azureml-model-deployment")
    assert gw._deployment(table, request(("X-Deployment", "green"))) == (green, False)
    assert gw._deployment(table, request(("azureml-model-deployment", "green"))) == (green, False)
    assert gw._deployment(table, request(("x-deployment", "blue"), ("azureml-model-deployment", "green")))[0] is blue


def test_pinning_an_unknown_or_unroutable_deployment_names_it(svc: OnlineService) -> None:  # noqa: F811
    add_deployment(svc, "shop", "blue")
    gw: Gateway = svc.gateway
    table = RouteTable.build("shop", {"traffic": {"blue": 100}}, None)
    with pytest.raises(_Answer) as err:
        gw._deployment(table, request(("X-Deployment", "ghost")))
    assert err.value.err.status_code == 404 and "no deployment 'ghost'" in str(err.value.err)
    assert err.value.deployment == "ghost"

    nothing = RouteTable.build("shop", {"traffic": {"blue": 0}}, None)
    with pytest.raises(_Answer) as err:
        gw._deployment(nothing, request())
    assert err.value.err.status_code == 404 and "X-Deployment" in str(err.value.err)

    failed = RouteTable.build("shop", {"traffic": {"blue": 100}}, None, failed={"blue": "model load failed"})
    with pytest.raises(_Answer) as err:
        gw._deployment(failed, request())
    assert err.value.err.status_code == 503 and "blue: model load failed" in str(err.value.err)

    gone = RouteTable.build("shop", {"traffic": {"stale": 100}}, None)  # in the table, not running
    with pytest.raises(_Answer) as err:
        gw._deployment(gone, request())
    assert err.value.err.status_code == 503 and "'stale' of 'shop' is not running" in str(err.value.err)
