"""The online service: the host side of online endpoints (supervisor + gateway + autoscaler).

``OnlineService(ctx)`` implements :class:`toolkit.context.OnlineServiceProtocol`.  The
control plane validates specs, writes the store and then calls a hook; hooks return at once and
the slow work (resolving and downloading the model, starting instances, waiting for readiness,
draining) runs in background tasks that record provisioning states and events.

In-memory state, rebuilt from the store on ``start()`` and on every hook, so the data plane never
reads the store per request: a :class:`RouteTable` per endpoint (traffic, mirror, auth mode and
secrets) and a :class:`Deployment` per deployment (instances, slots, waiters, stats).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from starlette.routing import BaseRoute

from ..context import HostContext
from ..errors import InvalidSpec, ToolkitError
from ..events import EventReason
from ..registry import pinned_uri
from ..specs import OnlineDeployment, parse_spec
from .autoscale import Autoscaler
from .deployment import FAILED, READY, Deployment, Generation, Instance
from .gateway import Gateway
from .metrics import Metrics
from .resources import CpuAllocator, compute_for
from .router import RouteTable
from .service_views import ServiceViews
from .supervisor import Supervisor

__all__ = ["OnlineService"]

log = logging.getLogger("toolkit.online")
_KIND_E, _KIND_D = "online-endpoint", "online-deployment"


class OnlineService(ServiceViews):
    """Construct with the host context; mount :meth:`routes`; call the hooks from the control plane."""

    def __init__(
        self, ctx: HostContext, *, instance_command: list[str] | None = None, monitor_interval_s: float = 1.0,
        startup_timeout_s: float = 600.0, autoscale: bool = True,
    ) -> None:
        self.ctx = ctx
        self.tables: dict[str, RouteTable] = {}
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self._endpoint_specs: dict[str, dict[str, Any]] = {}
        self._auth_override: dict[str, str] = {}
        self._secrets: dict[str, dict[str, str] | None] = {}
        self._deploying: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._swagger: dict[str, tuple[tuple[Any, ...], bytes]] = {}
        self.supervisor = Supervisor(
            logs=ctx.home.logs, run_dir=ctx.home.run_dir, event=self._event, command=instance_command,
            allocator=CpuAllocator(), monitor_interval_s=monitor_interval_s, startup_timeout_s=startup_timeout_s,
        )
        self.supervisor.deployments = lambda: list(self.deployments.values())
        self.metrics = Metrics(self._instance_samples)
        self.gateway = Gateway(self)
        self.autoscaler = Autoscaler(self.deployments, self.scale_to)
        self._autoscale = autoscale

    # --- protocol: lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        """Bring back every stored endpoint and deployment (after a host restart)."""
        self.ctx.home.ensure()
        self.supervisor.start_monitor()
        if self._autoscale:
            self.autoscaler.start()
        for res in self.ctx.store.list(_KIND_E):
            try:
                await self.endpoint_changed(res.endpoint)
            except InvalidSpec as err:
                # Refuse to serve an open endpoint on a non-loopback host: require keys instead.
                self._auth_override[res.endpoint] = "key"
                await self.endpoint_changed(res.endpoint)
                self._event(EventReason.AuthModeRefused, f"{err}; serving it with auth_mode key", level="warning",
                            endpoint=res.endpoint)
        for res in self.ctx.store.list(_KIND_D):
            if res.provisioning_state == "Deleting":
                continue
            self.ctx.store.set_state(_KIND_D, res.endpoint, res.name, "Updating",
                                     message="starting instances after a host restart")
            await self.deploy(res.endpoint, res.name)

    async def stop(self) -> None:
        """Stop every instance process (and the background loops)."""
        await self.autoscaler.stop()
        await self.supervisor.stop_monitor()
        await self._cancel_all(list(self._deploying.values()) + list(self._background))
        for dep in self.deployments.values():
            dep.closed = True
            dep.reroute_waiters()
        await asyncio.gather(*(self.supervisor.stop(i) for dep in self.deployments.values()
                               for i in dep.all_instances()), return_exceptions=True)
        await self.gateway.close()

    @staticmethod
    async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- protocol: hooks -----------------------------------------------------------------
    async def deploy(self, endpoint: str, name: str) -> None:
        """The stored deployment is new or changed: (re)start it in the background."""
        key = (endpoint, name)
        previous = self._deploying.pop(key, None)
        if previous is not None and not previous.done():
            # A newer spec wins: stop the half-started previous attempt first.
            await self._cancel_all([previous])
        task = asyncio.get_running_loop().create_task(self._deploy_guarded(endpoint, name),
                                                      name=f"deploy {endpoint}/{name}")
        self._deploying[key] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._deploying.get(key) is t:
                del self._deploying[key]

        task.add_done_callback(done)

    async def undeploy(self, endpoint: str, name: str) -> None:
        key = (endpoint, name)
        task = self._deploying.pop(key, None)
        if task is not None:
            await self._cancel_all([task])
        dep = self.deployments.pop(key, None)
        if dep is None:
            return
        dep.closed = True
        dep.reroute_waiters()
        self._rebuild(endpoint)
        await self._cancel_all([dep.cold_start] if dep.cold_start else [])
        # In-flight requests finish (bounded by the request timeout); new ones no longer see it.
        await asyncio.gather(*(self.supervisor.drain(i, dep.settings.timeout_s) for i in dep.all_instances()),
                             return_exceptions=True)
        self._event(EventReason.DeploymentStopped, f"stopped {len(dep.all_instances())} instance(s)", endpoint=endpoint,
                    deployment=name)
        self.metrics.forget(endpoint, name)  # its /metrics series go with it

    async def endpoint_changed(self, endpoint: str) -> None:
        """Traffic, mirror or auth mode changed (or keys were regenerated): rebuild its table."""
        res = self.ctx.store.find(_KIND_E, endpoint)
        if res is None:
            self.tables.pop(endpoint, None)
            return
        auth = res.spec.get("auth_mode") or "key"
        if auth == "none" and not self.ctx.settings.loopback and self._auth_override.get(endpoint) != "key":
            raise InvalidSpec(
                f"auth_mode: 'none' is only allowed when the host listens on loopback; this host listens on "
                f"{self.ctx.settings.host!r}, so use key or token")
        if auth != "none":
            self._auth_override.pop(endpoint, None)
        self._endpoint_specs[endpoint] = dict(res.spec)
        self._secrets[endpoint] = self.ctx.store.get_secrets(endpoint)
        self._swagger.pop(endpoint, None)
        self._rebuild(endpoint)

    async def endpoint_deleted(self, endpoint: str) -> None:
        self.tables.pop(endpoint, None)
        self._endpoint_specs.pop(endpoint, None)
        self._secrets.pop(endpoint, None)
        self._swagger.pop(endpoint, None)
        names = sorted({d for (e, d) in [*self.deployments, *self._deploying] if e == endpoint})
        await asyncio.gather(*(self.undeploy(endpoint, d) for d in names), return_exceptions=True)
        self.metrics.forget(endpoint)

    def routes(self) -> list[BaseRoute]:
        return self.gateway.routes()

    def scoring_app(self, path: str) -> Callable[[Any, Any, Any], Awaitable[None]] | None:
        target = self.gateway.scoring_target(path)
        if target is None:
            return None
        endpoint, instance_path, version = target
        gateway = self.gateway

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await gateway.score_asgi(scope, receive, send, endpoint, instance_path, version)

        return app

    async def wait(self, endpoint: str, name: str, timeout: float | None = None) -> str:
        """Wait for a deploy started by :meth:`deploy` to settle; return the provisioning state."""
        task = self._deploying.get((endpoint, name))
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        res = self.ctx.store.find(_KIND_D, endpoint, name)
        return res.provisioning_state if res else "Deleted"

    # --- deploying -----------------------------------------------------------------------
    def _event(self, reason: str, message: str, *, level: str = "info", endpoint: str | None = None,
               deployment: str | None = None) -> None:
        try:
            self.ctx.event(reason, message, level=level, endpoint=endpoint, deployment=deployment)
        except Exception:  # the store being busy must not break supervision
            log.exception("could not record event %s", reason)

    def _fail(self, endpoint: str, name: str, message: str) -> None:
        self.ctx.store.set_state(_KIND_D, endpoint, name, "Failed", message=message)
        self._event(EventReason.DeploymentFailed, message, level="error", endpoint=endpoint, deployment=name)

    def _resolve(self, model: str, model_version: str | None) -> tuple[str, str]:
        resolved = self.ctx.registry.resolve(pinned_uri(model, model_version))
        return resolved.uri, resolved.local_path

    async def _deploy_guarded(self, endpoint: str, name: str) -> None:
        try:
            await self._deploy(endpoint, name)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug here must still leave the deployment in a state, not Creating forever
            log.exception("deploying %s/%s failed", endpoint, name)
            self._mark_failed(endpoint, name, f"internal error while deploying: {type(err).__name__}: {err}")

    async def _deploy(self, endpoint: str, name: str) -> None:
        key = (endpoint, name)
        res = self.ctx.store.find(_KIND_D, endpoint, name)
        if res is None:
            return
        try:
            spec = parse_spec(OnlineDeployment, {k: v for k, v in res.spec.items()
                                                 if k not in ("provisioning_state", "model_version")})
            compute = compute_for(spec.instance_type)
            # Registry calls and artifact downloads block: keep them off the event loop.
            uri, path = await asyncio.to_thread(self._resolve, spec.model, res.model_version)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            msg = err.message if isinstance(err, ToolkitError) else f"{type(err).__name__}: {err}"
            dep = self.deployments.get(key)
            if dep is None or not dep.instances:
                self._mark_failed(endpoint, name, f"cannot resolve model {res.spec.get('model')!r}: {msg}")
            else:
                self._fail(endpoint, name, f"update failed, cannot resolve model: {msg}; the previous version keeps serving")
            return
        gen = Generation(spec, compute, uri, path)
        dep = self.deployments.get(key)
        update = dep is not None and not dep.closed and bool(dep.instances)
        s = spec.scale_settings
        count = spec.instance_count
        if update and s.type == "target_utilization":
            count = max(s.min_instances, min(s.max_instances, len(dep.instances)))  # type: ignore[union-attr]
        if dep is None or dep.closed:
            dep = Deployment(endpoint, name, gen)
            self.deployments[key] = dep
        new: list[Instance] = []
        async with dep.lock:
            try:
                new = [self.supervisor.new_instance(dep, gen) for _ in range(count)]
                if update:
                    dep.pending = new
                else:
                    dep.switch(gen, new)
                    dep.failed = None
                    self._rebuild(endpoint)
                for inst in new:
                    self.supervisor.launch(inst)
                ok, message = await self._settle(new)
            except asyncio.CancelledError:
                await asyncio.shield(self._stop_all(new))
                dep.pending = [i for i in dep.pending if i not in new]
                raise
            if not ok:
                await self._stop_all(new)
                if update:
                    dep.pending = []
                    self._fail(endpoint, name, f"update failed: {message}; the previous version keeps serving")
                else:
                    dep.instances = []
                    dep.refresh()
                    self._mark_failed(endpoint, name, message)
                return
            dep.target = count
            if update:
                old = dep.switch(gen, new)
                dep.failed = None
                self._swagger.pop(endpoint, None)
                self._rebuild(endpoint)
                self.ctx.store.set_state(_KIND_D, endpoint, name, "Succeeded")
                self._event(EventReason.DeploymentUpdated, f"{len(new)} new instance(s) serving {gen.model_uri}; draining "
                            f"{len(old)} old one(s)", endpoint=endpoint, deployment=name)
            else:
                old = []
                self._rebuild(endpoint)
                self.ctx.store.set_state(_KIND_D, endpoint, name, "Succeeded")
                self._event(EventReason.DeploymentReady, f"{len(new)} instance(s) ready, serving {gen.model_uri}",
                            endpoint=endpoint, deployment=name)
        if old:
            # Draining outside the lock: autoscaling may act on the new generation meanwhile.
            await asyncio.gather(*(self.supervisor.drain(i, dep.settings.timeout_s + 1.0) for i in old),
                                 return_exceptions=True)
            dep.retired = [i for i in dep.retired if i not in old]

    def _mark_failed(self, endpoint: str, name: str, message: str) -> None:
        dep = self.deployments.get((endpoint, name))
        if dep is not None:
            dep.failed = message
            dep.reroute_waiters()
        self._fail(endpoint, name, message)
        self._rebuild(endpoint)

    async def _stop_all(self, instances: list[Instance]) -> None:
        await asyncio.gather(*(self.supervisor.stop(i) for i in instances), return_exceptions=True)

    async def _settle(self, instances: list[Instance]) -> tuple[bool, str]:
        """Wait until every instance is ready (True) or one failed for good (False, why)."""
        waits = {asyncio.ensure_future(i.settled.wait()): i for i in instances}
        deadline = time.monotonic() + self.supervisor.startup_timeout_s + 5.0
        try:
            while waits:
                done, _ = await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()),
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    return False, f"instances not ready within {self.supervisor.startup_timeout_s:.0f} s"
                for fut in done:
                    inst = waits.pop(fut)
                    if inst.state == FAILED or not inst.ever_ready.is_set():
                        return False, inst.load_error or f"instance {inst.id} stopped before it was ready"
            return True, ""
        finally:
            for fut in waits:
                fut.cancel()

    # --- scaling (autoscaler and cold starts) --------------------------------------------
    async def scale_to(self, dep: Deployment, n: int, reason: str, message: str) -> list[Instance]:
        """Set the number of routed instances; new ones join routing when ready, removed ones drain."""
        async with dep.lock:
            current = len(dep.instances)
            if n == current or dep.closed:
                return []
            self._event(reason, message, endpoint=dep.endpoint, deployment=dep.name)
            dep.target = n
            if n > current:
                new = [self.supervisor.new_instance(dep) for _ in range(n - current)]
                dep.instances = [*dep.instances, *new]
                dep.refresh()
                for inst in new:
                    self.supervisor.launch(inst)
                return new
            # Remove the least useful first: not ready, then the newest.
            order = sorted(dep.instances, key=lambda i: (i.state == READY, -dep.instances.index(i)))
            remove = order[: current - n]
            dep.instances = [i for i in dep.instances if i not in remove]
            dep.retired.extend(remove)
            dep.refresh()
        task = asyncio.get_running_loop().create_task(self._retire(dep, remove))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return []

    async def _retire(self, dep: Deployment, instances: list[Instance]) -> None:
        await asyncio.gather(*(self.supervisor.drain(i, dep.settings.timeout_s + 1.0) for i in instances),
                             return_exceptions=True)
        dep.retired = [i for i in dep.retired if i not in instances]

    def cold_start(self, dep: Deployment) -> bool:
        """A request found no instance: start one if scale settings allow; True if one is coming."""
        if dep.failed or dep.closed:
            return False
        if dep.instances or dep.pending or (dep.cold_start is not None and not dep.cold_start.done()):
            return True
        if dep.spec.scale_settings.type != "target_utilization":
            return False
        dep.cold_start = asyncio.get_running_loop().create_task(self._cold_start(dep), name=f"cold start {dep.name}")
        return True

    async def _cold_start(self, dep: Deployment) -> None:
        n = max(1, dep.spec.scale_settings.min_instances)
        new = await self.scale_to(dep, n, EventReason.ScaledUp, f"from 0 to {n} instance(s): cold start for a waiting request")
        ok, message = await self._settle(new) if new else (True, "")
        if not ok:
            await self._stop_all(new)
            dep.instances = [i for i in dep.instances if i not in new]
            dep.refresh()
            self._mark_failed(dep.endpoint, dep.name, f"cold start failed: {message}")

    # --- routing -------------------------------------------------------------------------
    def _rebuild(self, endpoint: str) -> None:
        spec = self._endpoint_specs.get(endpoint)
        if spec is None:
            return
        failed = {d: dep.failed for (e, d), dep in self.deployments.items() if e == endpoint and dep.failed}
        self.tables[endpoint] = RouteTable.build(
            endpoint, spec, self._secrets.get(endpoint), auth_mode=self._auth_override.get(endpoint), failed=failed)

    @property
    def startup_timeout_s(self) -> float:
        return self.supervisor.startup_timeout_s

    def is_deploying(self, endpoint: str, name: str) -> bool:
        return (endpoint, name) in self._deploying

    def serving(self, endpoint: str, name: str) -> bool:
        """Ready to answer: a ready instance, or scaled to zero with a cold start possible."""
        dep = self.deployments.get((endpoint, name))
        if dep is None or dep.failed:
            return False
        if dep.ready:
            return True
        return not dep.instances and dep.spec.scale_settings.type == "target_utilization"
