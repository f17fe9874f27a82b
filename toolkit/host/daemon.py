"""Starting, finding and stopping the host process of a workspace.

The host runs detached in its own session (so ``down`` can stop the whole process group, model
instances and Dask workers included) and holds an exclusive lock on ``endpoints/host.lock`` for
its lifetime: a second host on the same home cannot start, however the two are launched.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import Conflict, HostError
from ..home import Home

__all__ = ["HostInfo", "read_host", "start_background", "stop", "serve", "DEFAULT_PORT", "PRIVATE_UMASK"]

DEFAULT_PORT = 5080
# Everything the host and its children (instances, Dask workers) create is owner-only: the
# state holds keys, and logs and job outputs may hold scored data.
PRIVATE_UMASK = 0o077
log = logging.getLogger("toolkit.host")


@dataclass
class HostInfo:
    pid: int
    url: str
    host: str
    port: int
    started_at: float
    home: str
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        return True


def _lock_path(home: Home) -> Path:
    return home.endpoints / "host.lock"


def _lock_held(home: Home) -> bool:
    path = _lock_path(home)
    if not path.exists():
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def read_host(home: Home) -> HostInfo | None:
    """The running host of ``home``, or None (a stale host.json of a dead host is ignored)."""
    try:
        data = json.loads(home.host_json.read_text())
        info = HostInfo(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if not _pid_alive(info.pid) or not _lock_held(home):
        return None
    return info


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start_background(home: Home, host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = 120.0) -> HostInfo:
    """Start the host detached; return once it answers.  Raises Conflict if one already runs."""
    home.ensure()
    running = read_host(home)
    if running is not None:
        raise Conflict(f"a host is already running for {home.root} at {running.url} (pid {running.pid})")
    if port and not _port_free(host, port):
        raise Conflict(f"port {port} on {host} is in use; choose another with --port")
    home.admin_token(create=True)
    cmd = [sys.executable, "-m", "toolkit.host", "--home", str(home.root), "--host", host, "--port", str(port)]
    with os.fdopen(os.open(home.host_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as logf:
        proc = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, umask=PRIVATE_UMASK,
            start_new_session=True, close_fds=True, env={**os.environ, "ENDPOINTS_HOME": str(home.root)},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_host(home)
        if info is not None and info.pid == proc.pid and _answers(info.url):
            return info
        if proc.poll() is not None:
            raise HostError(f"the host exited with code {proc.returncode} during start-up; see {home.host_log}:\n"
                            + _tail(home.host_log, 15))
        time.sleep(0.1)
    raise HostError(f"the host did not answer within {timeout:.0f} s; see {home.host_log}")


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(home: Home, timeout: float = 30.0) -> HostInfo | None:
    """Stop the host and everything it started; returns what was stopped (None if nothing ran)."""
    info = read_host(home)
    if info is None:
        return None
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return info
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(info.pid):
        time.sleep(0.1)
    # Whatever is left in the host's process group (instances, workers) goes with it.
    try:
        os.killpg(info.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        home.host_json.unlink()
    except FileNotFoundError:
        pass
    return info


def _setup_logging(home: Home, foreground: bool) -> None:
    from .logs import setup_host_logging

    setup_host_logging(home.host_log, foreground=foreground)


def serve(home: Home, host: str = "127.0.0.1", port: int = DEFAULT_PORT, foreground: bool = False) -> int:
    """Run the host in this process until SIGTERM/SIGINT (``endpoints up --foreground``)."""
    import uvicorn

    from ..registry import Registry
    from ..store import Store
    from .app import create_host_app
    from .services import HostContext, HostSettings

    os.umask(PRIVATE_UMASK)
    home.ensure()
    _setup_logging(home, foreground)
    repaired = home.make_private()
    if repaired:
        log.warning("took group/other permissions off %d entries under %s (the endpoint state is "
                    "owner-only)", repaired, home.endpoints)
    lock = open(_lock_path(home), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        running = read_host(home)
        where = f" at {running.url} (pid {running.pid})" if running else ""
        print(f"a host is already running for {home.root}{where}", file=sys.stderr)
        return 1
    if foreground:
        # In the foreground we are the session leader too, so `down` can stop our children.
        try:
            os.setpgid(0, 0)
        except OSError:
            pass

    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and without
    # it kept-alive responses wait ~40 ms for delayed ACKs.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        print(f"cannot listen on {host}:{port}: {err.strerror}", file=sys.stderr)
        return 1
    sock.listen(2048)
    port = sock.getsockname()[1]

    token = home.admin_token(create=True) or ""
    store = Store(home.state_db)
    settings = HostSettings(host=host, port=port, started_at=time.time())
    ctx = HostContext(home=home, store=store, registry=Registry(home), settings=settings)
    _attach_services(ctx)
    server: uvicorn.Server | None = None

    def request_shutdown() -> None:
        if server is not None:
            server.should_exit = True

    app = create_host_app(ctx, token, request_shutdown)
    config = uvicorn.Config(
        # log_config=None: uvicorn's lines go through our rotating, rate-limited host log.
        app, loop="uvloop", http="httptools", log_level="warning", access_log=False, log_config=None,
        timeout_keep_alive=30, backlog=2048, lifespan="on",
    )
    server = uvicorn.Server(config)
    info = HostInfo(pid=os.getpid(), url=settings.url, host=host, port=port,
                    started_at=settings.started_at, home=str(home.root))
    tmp = home.host_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2))
    tmp.replace(home.host_json)
    log.info("host %s for %s on %s (pid %d)", __version__, home.root, settings.url, os.getpid())
    try:
        try:  # uvloop cuts the gateway's per-request cost; plain asyncio still works without it
            import uvloop

            uvloop.run(server.serve(sockets=[sock]))
        except ImportError:
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        try:
            if json.loads(home.host_json.read_text()).get("pid") == os.getpid():
                home.host_json.unlink()
        except (OSError, ValueError):
            pass
        store.close()
        log.info("host stopped")
    return 0


def _attach_services(ctx: Any) -> None:
    """Build the online and batch services (both always: the control plane relies on them)."""
    from ..batch.service import BatchService
    from ..online.service import OnlineService

    ctx.online = OnlineService(ctx)
    ctx.batch = BatchService(ctx)
