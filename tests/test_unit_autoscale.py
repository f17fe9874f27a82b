"""The autoscaler's decisions, on real deployments and without one process.

The autoscaler sees only what the online service hands it: the live deployments and a
``scale_to`` callable.  Here that callable records what was asked (and sets the instance count as
the service would), and the clock is passed in, so each decision is a state, not a wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from toolkit.events import EventReason
from toolkit.online.autoscale import Autoscaler, decide
from toolkit.online.resources import compute_for
from toolkit.online.supervisor import READY, Deployment, Generation, Instance
from toolkit.specs import OnlineDeployment

MODEL = "models:/churn/1"


def deployment(count: int = 1, name: str = "blue", **scale: Any) -> Deployment:
    settings = {"type": "target_utilization", "polling_interval": 10, "scale_down_delay": 30,
                "idle_timeout": 60, "min_instances": 1, "max_instances": 4, **scale}
    spec = OnlineDeployment(name=name, endpoint_name="shop", model=MODEL, instance_count=count,
                            scale_settings=settings, request_settings={"max_concurrent_requests_per_instance": 1})
    dep = Deployment("shop", name, Generation(spec, compute_for(spec.instance_type), MODEL, "/not/used"))
    set_instances(dep, count)
    return dep


def set_instances(dep: Deployment, n: int) -> None:
    dep.instances = []
    for i in range(n):
        inst = Instance(dep, dep.gen, f"{dep.name}-{i}", Path(f"/not/used/{i}.sock"), Path(f"/not/used/{i}.log"), [0])
        inst.state = READY
        dep.instances.append(inst)
    dep.refresh()


class Recorder:
    """The scale_to hook: remembers each request and applies it as the service would."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, EventReason, str]] = []

    async def __call__(self, dep: Deployment, n: int, reason: EventReason, message: str) -> None:
        self.calls.append((n, reason, message))
        set_instances(dep, n)


async def watching(dep: Deployment) -> tuple[Recorder, Autoscaler]:
    """An autoscaler over ``dep`` alone, with its first look taken at t=0 (which only starts the measurement)."""
    scale = Recorder()
    auto = Autoscaler({(dep.endpoint, dep.name): dep}, scale)
    await auto.tick(dep, now=0.0)
    return scale, auto


def busy(dep: Deployment, in_flight: float, seconds: float) -> None:
    """``in_flight`` requests on average over ``seconds`` (Little's law: busy time adds up)."""
    dep.stats.busy_s += in_flight * seconds


def test_decide_keeps_within_bounds_and_rounds_up() -> None:
    assert decide(2, cpu_util=10, conc_util=140, target=70, lo=1, hi=4).desired == 4
    assert decide(2, cpu_util=10, conc_util=105, target=70, lo=1, hi=10).desired == 3
    assert decide(4, cpu_util=5, conc_util=5, target=70, lo=2, hi=4).desired == 2
    assert decide(0, cpu_util=0, conc_util=0, target=70, lo=1, hi=4).desired == 1


def test_scales_up_at_once_and_down_only_after_the_delay() -> None:
    async def main() -> None:
        dep = deployment(count=1)
        scale, auto = await watching(dep)
        busy(dep, in_flight=2.0, seconds=10)
        dep.stats.last_request = 10.0
        await auto.tick(dep, now=10.0)
        assert [(n, r) for n, r, _ in scale.calls] == [(3, EventReason.ScaledUp)]
        assert "concurrency" in scale.calls[0][2] and "target 70%" in scale.calls[0][2]

        # Load falls: nothing happens before scale_down_delay (30 s) of low load.
        for now in (20.0, 30.0, 40.0):
            busy(dep, in_flight=0.3, seconds=10)
            dep.stats.last_request = now
            await auto.tick(dep, now=now)
        assert len(scale.calls) == 1
        busy(dep, in_flight=0.3, seconds=10)
        dep.stats.last_request = 50.0
        await auto.tick(dep, now=50.0)
        assert [(n, r) for n, r, _ in scale.calls[1:]] == [(1, EventReason.ScaledDown)]
        assert "scale_down_delay" in scale.calls[1][2]

    asyncio.run(main())


def test_a_short_pause_between_bursts_does_not_scale_down() -> None:
    async def main() -> None:
        dep = deployment(count=2)
        scale, auto = await watching(dep)
        for now, load in ((10.0, 0.2), (20.0, 1.4), (30.0, 0.2), (40.0, 1.4)):
            busy(dep, in_flight=load, seconds=10)
            dep.stats.last_request = now
            await auto.tick(dep, now=now)
        assert scale.calls == []

    asyncio.run(main())


def test_idle_with_min_zero_goes_to_zero_and_a_fixed_deployment_is_left_alone() -> None:
    async def main() -> None:
        idle = deployment(count=1, name="idle", min_instances=0)
        fixed = deployment(count=1, name="fixed", type="default")
        scale = Recorder()
        auto = Autoscaler({("shop", "idle"): idle, ("shop", "fixed"): fixed}, scale)
        idle.stats.last_request = 0.0
        for now in (0.0, 70.0):
            await auto.tick(idle, now=now)
            await auto.tick(fixed, now=now)
        assert [(n, r) for n, r, _ in scale.calls] == [(0, EventReason.ScaledDown)]
        assert "idle_timeout" in scale.calls[0][2]
        # At zero the autoscaler waits for a request (the gateway's cold start), it does not scale up.
        await auto.tick(idle, now=80.0)
        assert len(scale.calls) == 1

    asyncio.run(main())


def test_an_update_in_progress_owns_the_instances() -> None:
    async def main() -> None:
        dep = deployment(count=1)
        scale, auto = await watching(dep)
        busy(dep, in_flight=3.0, seconds=10)
        async with dep.lock:  # a redeploy holds the lock
            await auto.tick(dep, now=10.0)
        assert scale.calls == []

    asyncio.run(main())
