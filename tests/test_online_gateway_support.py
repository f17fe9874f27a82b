"""Shared helpers of the online service tests (no tests here).

A real :class:`OnlineService` behind a real uvicorn server on a free loopback port, in a thread
with its own event loop; real instance processes (``python -m toolkit.runtime.instance``) loading
real registry models; real HTTP (aiohttp) from the test.  The control plane is played by the
test: it writes the store, then calls the service's hooks on the server's loop, as the host's
control plane does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Coroutine, Iterator

import aiohttp
import uvicorn

from toolkit.control import ControlPlane
from toolkit.demo.data import CHURN_FEATURES, churn_frame
from toolkit.home import Home
from toolkit.host.app import DataPlane
from toolkit.context import HostContext, HostSettings
from toolkit.online.service import OnlineService
from toolkit.registry import Registry
from toolkit.specs import OnlineDeployment, OnlineEndpoint
from toolkit.store import Store

__all__ = ["OnlineHost", "make_home", "module_host", "serve_churn", "churn_body", "fire", "Reply", "write_script", "FAST_PROBES"]

# Short probes so tests do not wait on production defaults (10 s liveness delay).
FAST_PROBES = {
    "readiness_probe": {"initial_delay": 0, "period": 1, "timeout": 2, "failure_threshold": 3},
    "liveness_probe": {"initial_delay": 20, "period": 2, "timeout": 2, "failure_threshold": 5},
}


def make_home(root: Path, demo_registry: Path) -> Home:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    home = Home(root).ensure()
    home.configure_mlflow()
    return home


def churn_body(rows: int = 3, start: int = 0) -> bytes:
    df = churn_frame().iloc[start:start + rows][CHURN_FEATURES]
    split = df.to_dict(orient="split")
    return json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}}).encode()


def write_script(folder: Path, source: str, name: str = "score.py") -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(source)
    return {"code": str(folder), "scoring_script": name}


class Reply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:200]!r})"


def fire(
    url: str, n: int, concurrency: int = 8, body: bytes | None = None, headers: dict[str, str] | None = None,
    method: str = "POST", between: Callable[[int], dict[str, str] | None] | None = None, timeout: float = 60.0,
    stop: threading.Event | None = None,
) -> list[Reply]:
    """Send ``n`` requests with ``concurrency`` workers; ``between(i)`` may add headers per request;
    ``stop`` ends the run early (workers take no new request once it is set)."""

    async def main() -> list[Reply]:
        out: list[Reply | None] = [None] * n
        counter = iter(range(n))
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async def worker() -> None:
                for i in counter:
                    if stop is not None and stop.is_set():
                        return
                    h = dict(headers or {})
                    if body is not None:
                        h.setdefault("Content-Type", "application/json")
                    if between is not None:
                        h.update(between(i) or {})
                    async with s.request(method, url, data=body, headers=h) as r:
                        out[i] = Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read())

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return [r for r in out if r is not None]

    return asyncio.run(main())


class OnlineHost:
    """An OnlineService served by uvicorn in a background thread."""

    def __init__(self, home: Home, *, host: str = "127.0.0.1", **service_kw: Any) -> None:
        from conftest import free_port

        self.home = home
        self.port = free_port()
        self.store = Store(home.state_db)
        self.registry = Registry(home)
        self.ctx = HostContext(home=home, store=self.store, registry=self.registry,
                               settings=HostSettings(host=host, port=self.port))
        self.service = OnlineService(self.ctx, **service_kw)
        self.ctx.online = self.service
        self.plane = ControlPlane(self.ctx)  # creates endpoints and deployments as the host does
        self.loop: asyncio.AbstractEventLoop | None = None
        svc = self.service

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            self.loop = asyncio.get_running_loop()
            await svc.start()
            try:
                yield
            finally:
                await svc.stop()

        self.app = DataPlane(svc, lifespan=lifespan)  # the host's own data-plane app
        # Bind loopback even when the context pretends to be a public host (auth tests).
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, loop="uvloop", http="httptools", lifespan="on",
            log_level="warning", access_log=False,
        ))
        self.thread = threading.Thread(target=self.server.run, name="online-host", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> "OnlineHost":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("online host did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.store.close()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 300) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the server loop (to read live state consistently)."""
        async def run() -> Any:
            return fn()
        return self.call(run())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- the control plane's part --------------------------------------------------------
    def create_endpoint(self, name: str, auth_mode: str = "key", traffic: dict[str, int] | None = None,
                        mirror: dict[str, int] | None = None) -> dict[str, str]:
        """Create the endpoint through the control plane (which mints its keys); its secrets."""
        spec = OnlineEndpoint(name=name, auth_mode=auth_mode, traffic=traffic or {}, mirror_traffic=mirror or {})
        self.call(self.plane.create_online_endpoint(spec))
        secrets = self.store.get_secrets(name)
        assert secrets is not None
        return secrets

    def set_traffic(self, name: str, traffic: dict[str, int], mirror: dict[str, int] | None = None) -> None:
        # Written directly, not through the control plane: tests store states it refuses (traffic to
        # a Failed deployment) to see that the gateway copes with them.
        spec = self.store.get("online-endpoint", name).spec
        spec["traffic"] = traffic
        spec["mirror_traffic"] = mirror or {}
        self.store.put("online-endpoint", name, name, spec, "Succeeded")
        self.call(self.service.endpoint_changed(name))

    def deploy(self, endpoint: str, name: str, model: str = "models:/churn/1", wait: bool = True,
               **fields: Any) -> str:
        spec: dict[str, Any] = {"name": name, "endpoint_name": endpoint, "model": model,
                                "instance_type": "cpu-small", **FAST_PROBES}
        spec.update(fields)
        self.call(self.plane.put_online_deployment(endpoint, name, OnlineDeployment.model_validate(spec)))
        if not wait:
            return "Creating"
        return self.call(self.service.wait(endpoint, name))

    def state(self, endpoint: str, name: str) -> tuple[str, str]:
        r = self.store.get("online-deployment", endpoint, name)
        return r.provisioning_state, r.message

    def events(self, endpoint: str, deployment: str | None = None, reason: str | None = None) -> list[Any]:
        evs = self.store.events(endpoint=endpoint, deployment=deployment, limit=1000)
        return [e for e in evs if reason is None or e.reason == reason]

    def wait_for(self, cond: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def describe(self, endpoint: str, name: str) -> dict[str, Any]:
        return self.on_loop(lambda: self.service.describe(endpoint, name))

    def stats(self, endpoint: str | None = None) -> dict[str, Any]:
        return self.on_loop(lambda: self.service.stats(endpoint))


def auth(secrets: dict[str, str], which: str = "primary_key") -> dict[str, str]:
    return {"Authorization": f"Bearer {secrets[which]}"}


def pid_alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as dead: it holds no memory and no socket)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def module_host(tmp_path_factory: Any, demo_registry: Path, label: str) -> Iterator[OnlineHost]:
    """Body of a module-scoped ``host`` fixture: a started host on a copy of the demo registry,
    stopped when the module ends (``yield from module_host(...)``)."""
    home = make_home(tmp_path_factory.mktemp(label) / "home", demo_registry)
    host = OnlineHost(home).start()
    try:
        yield host
    finally:
        host.stop()


def serve_churn(host: OnlineHost, traffic: dict[str, int], versions: dict[str, int] | None = None,
                endpoint: str = "churn", **endpoint_settings: Any) -> dict[str, str]:
    """Endpoint ``endpoint`` with one deployment per entry of ``versions`` (name -> churn version;
    blue=1 alone by default), each Succeeded, then ``traffic``; returns the endpoint's keys."""
    secrets = host.create_endpoint(endpoint, **endpoint_settings)
    for name, version in (versions or {"blue": 1}).items():
        assert host.deploy(endpoint, name, f"models:/churn/{version}") == "Succeeded", host.state(endpoint, name)
    host.set_traffic(endpoint, traffic)
    return secrets
