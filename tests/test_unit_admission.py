"""The gateway's admission rules, on real objects and without one process: slots, the bounded
queue, Azure's 2x-capacity 429, the wait limit, and what a caller hears when nothing can serve.

The rules live in ``Gateway._acquire`` (the queue and the refusals) and in ``Deployment``
(``try_acquire``/``release``/``wake``/``reroute_waiters``: the slots and the waiters).  An online
service that is built but never started holds both; its "instances" are ``Instance`` objects the
supervisor made but never launched, marked Ready by hand, so a test decides exactly which slots
exist.  Nothing here sends a request to an instance: a granted slot is where admission ends.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import pytest

from toolkit.errors import TooManyRequests, Unavailable
from toolkit.context import HostContext
from toolkit.online.resources import compute_for
from toolkit.online.router import RouteTable
from toolkit.online.service import OnlineService
from toolkit.online.supervisor import READY, STARTING, Deployment, Generation
from toolkit.specs import OnlineDeployment

MODEL = "models:/churn/1"


def add_deployment(svc: OnlineService, endpoint: str, name: str, *, ready: int = 1, starting: int = 0,
                   max_concurrent: int = 2, queue_wait_ms: int = 5000, **spec: Any) -> Deployment:
    """A deployment of ``svc`` with ``ready`` Ready and ``starting`` Starting instances (none launched)."""
    settings = {"max_concurrent_requests_per_instance": max_concurrent, "max_queue_wait_ms": queue_wait_ms}
    dep_spec = OnlineDeployment(name=name, endpoint_name=endpoint, model=MODEL, request_settings=settings,
                                instance_count=max(1, ready + starting), **spec)
    dep = Deployment(endpoint, name, Generation(dep_spec, compute_for(dep_spec.instance_type), MODEL, "/not/used"))
    for state in [READY] * ready + [STARTING] * starting:
        inst = svc.supervisor.new_instance(dep)
        inst.state = state
        dep.instances.append(inst)
    dep.refresh()
    svc.deployments[(endpoint, name)] = dep
    return dep


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())


async def until_waiting(dep: Deployment, n: int) -> None:
    """Let the loop run until ``n`` callers wait for a slot (a state, not a time)."""
    for _ in range(1000):
        if sum(not f.done() for f in dep.waiters) >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"expected {n} waiter(s), have {len(dep.waiters)}")


@pytest.fixture
def svc(idle_host_context: HostContext) -> OnlineService:
    """A fresh, never started online service per test: its deployments are the test's own."""
    return OnlineService(idle_host_context, autoscale=False)


def test_slots_go_to_the_least_busy_ready_instance_up_to_the_limit(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=2, max_concurrent=2)
    a, b = dep.instances
    got = [dep.try_acquire() for _ in range(4)]
    assert sorted(id(i) for i in got) == sorted([id(a), id(a), id(b), id(b)])  # spread, two each
    assert (a.inflight, b.inflight) == (2, 2)
    assert dep.try_acquire() is None  # every slot taken
    dep.release(a)
    assert dep.try_acquire(exclude=a) is None  # a retry never goes back to the instance that failed it
    assert dep.try_acquire() is a


def test_suspect_and_not_ready_instances_get_no_slot(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=2, starting=1)
    ready_a, ready_b, starting = dep.instances
    assert dep.ready == [ready_a, ready_b]
    ready_a.suspect = True  # a connection to it failed: out of routing until a probe passes
    dep.refresh()
    assert [dep.try_acquire() for _ in range(2)] == [ready_b, ready_b]
    assert dep.try_acquire() is None and starting.inflight == 0 and ready_a.inflight == 0


def test_a_full_deployment_queues_callers_and_serves_them_in_arrival_order(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=1, max_concurrent=1)
    (inst,) = dep.instances

    async def main() -> None:
        held = await svc.gateway._acquire(dep)
        assert held is inst
        first = asyncio.create_task(svc.gateway._acquire(dep))
        await until_waiting(dep, 1)
        second = asyncio.create_task(svc.gateway._acquire(dep))
        await until_waiting(dep, 2)
        dep.release(held)                      # one slot frees: the first caller gets it
        assert await first is inst
        await asyncio.sleep(0)
        assert not second.done() and inst.inflight == 1
        dep.release(inst)
        assert await second is inst
        assert not dep.waiters

    run(main)


def test_beyond_twice_the_ready_capacity_is_refused_at_once_with_retry_after(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=1, max_concurrent=2, queue_wait_ms=60_000)

    async def main() -> None:
        for _ in range(2):
            await svc.gateway._acquire(dep)
        # The gateway counts a request as admitted before asking for a slot.
        dep.admitted = 2 * 2 * 1          # exactly twice the capacity: still queued
        waiting = asyncio.create_task(svc.gateway._acquire(dep))
        await until_waiting(dep, 1)
        dep.admitted = 2 * 2 * 1 + 1      # one more: refused without joining the queue
        with pytest.raises(TooManyRequests, match=r"over capacity \(1 ready instance\(s\) x 2 concurrent"):
            await svc.gateway._acquire(dep)
        assert sum(not f.done() for f in dep.waiters) == 1
        waiting.cancel()

    run(main)
    err = TooManyRequests("x", retry_after=1)
    headers = svc.gateway._error_headers(err, "rid-1", "blue")
    assert headers == {"X-Request-Id": "rid-1", "X-Deployment": "blue", "Retry-After": "1"}


def test_no_slot_within_the_queue_wait_is_429_naming_the_setting(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=1, max_concurrent=1, queue_wait_ms=30)

    async def main() -> None:
        await svc.gateway._acquire(dep)
        with pytest.raises(TooManyRequests, match="no free slot on deployment 'blue' within max_queue_wait_ms=30"):
            await svc.gateway._acquire(dep)

    run(main)


def test_zero_queue_wait_refuses_a_full_deployment_without_waiting(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=1, max_concurrent=1, queue_wait_ms=0)

    async def main() -> None:
        await svc.gateway._acquire(dep)
        with pytest.raises(TooManyRequests, match="max_queue_wait_ms=0"):
            await svc.gateway._acquire(dep)
        assert not dep.waiters

    run(main)


def test_nothing_ready_is_503_with_the_reason(svc: OnlineService) -> None:
    starting = add_deployment(svc, "shop", "starting", ready=0, starting=1, queue_wait_ms=20)
    failed = add_deployment(svc, "shop", "failed", ready=0)
    failed.failed = "model load failed: no module named nope"
    none = add_deployment(svc, "shop", "idle", ready=0)  # default scale settings: no cold start

    async def main() -> None:
        with pytest.raises(Unavailable, match="'starting' of 'shop' has no ready instance"):
            await svc.gateway._acquire(starting)
        with pytest.raises(Unavailable, match="has no instance: model load failed: no module named nope"):
            await svc.gateway._acquire(failed)
        with pytest.raises(Unavailable, match="'idle' of 'shop' has no instances"):
            await svc.gateway._acquire(none)

    run(main)


def test_a_new_ready_instance_serves_a_waiting_caller(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=1, starting=1, max_concurrent=1)
    busy, coming = dep.instances

    async def main() -> None:
        await svc.gateway._acquire(dep)
        waiting = asyncio.create_task(svc.gateway._acquire(dep))
        await until_waiting(dep, 1)
        coming.state = READY
        dep.refresh()                     # what the supervisor does when a probe passes
        assert await waiting is coming

    run(main)


def test_waiters_look_again_when_routing_changes_and_fail_when_the_deployment_goes(svc: OnlineService) -> None:
    dep = add_deployment(svc, "shop", "blue", ready=1, max_concurrent=1)

    async def main() -> None:
        await svc.gateway._acquire(dep)
        waiting = asyncio.create_task(svc.gateway._acquire(dep))
        await until_waiting(dep, 1)
        dep.reroute_waiters()             # "look again": still full, so it waits again
        await until_waiting(dep, 1)
        assert not waiting.done()
        dep.closed = True                 # the deployment is deleted under the waiting caller
        dep.reroute_waiters()
        with pytest.raises(Unavailable, match="'blue' of 'shop' was removed"):
            await waiting

    run(main)


def test_a_refusal_reaches_the_caller_as_json_through_the_real_scoring_handler(svc: OnlineService) -> None:
    """The raw ASGI scoring path, end to end up to admission: a full deployment answers 429 with
    Retry-After and the deployment's name, as JSON, without any instance being contacted."""
    dep = add_deployment(svc, "shop", "blue", ready=1, max_concurrent=1, queue_wait_ms=0)
    svc.tables["shop"] = RouteTable.build("shop", {"traffic": {"blue": 100}}, None, auth_mode="none")

    async def main() -> tuple[int, dict[str, str], dict[str, Any]]:
        await svc.gateway._acquire(dep)   # the only slot is taken
        body = json.dumps({"input_data": [[1, 2]]}).encode()
        scope = {"type": "http", "method": "POST", "path": "/endpoints/shop/score",
                 "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        await svc.gateway.score_asgi(scope, receive, send, "shop", "/score")
        start, reply = sent
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, json.loads(reply["body"])

    status, headers, body = run(main)
    assert status == 429 and headers["retry-after"] == "1" and headers["x-deployment"] == "blue"
    assert body["error_code"] == "TooManyRequests" and "max_queue_wait_ms=0" in body["message"]
    assert dep.admitted == 0  # the refused request no longer counts against the queue
