"""The host process itself: ``serve`` runs the server of a workspace until it is stopped.

Finding, starting and stopping a host from outside lives in :mod:`toolkit.launcher`: the SDK and
the CLI import that, not this module (only ``endpoints up --foreground`` imports it, to serve in
its own process).  The names re-exported below keep ``daemon.read_host``
and friends working for code written against this module before the split (tests).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import socket
import sys
import time
from typing import Any

from .. import __version__
from ..home import Home
from ..launcher import (  # noqa: F401  (re-exported for compatibility)
    DEFAULT_PORT, PRIVATE_UMASK, HostInfo, lock_path, pid_alive, port_free, read_host, start_background, stop,
)

__all__ = ["HostInfo", "read_host", "start_background", "stop", "serve", "DEFAULT_PORT", "PRIVATE_UMASK"]

# The old private names, for tests written before the split.
_port_free, _pid_alive, _lock_path = port_free, pid_alive, lock_path
log = logging.getLogger("toolkit.host")


def _setup_logging(home: Home, foreground: bool) -> None:
    from .logs import setup_host_logging

    setup_host_logging(home.host_log, foreground=foreground)


def serve(home: Home, host: str = "127.0.0.1", port: int = DEFAULT_PORT, foreground: bool = False) -> int:
    """Run the host in this process until SIGTERM/SIGINT (``endpoints up --foreground``)."""
    import uvicorn

    from ..registry import Registry
    from ..store import Store
    from .app import create_host_app
    from ..context import HostContext, HostSettings

    os.umask(PRIVATE_UMASK)
    home.ensure()
    _setup_logging(home, foreground)
    repaired = home.make_private()
    if repaired:
        log.warning("took group/other permissions off %d entries under %s (the endpoint state is "
                    "owner-only)", repaired, home.endpoints)
    lock = open(lock_path(home), "a")
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
