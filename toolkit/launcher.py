"""Finding, starting and stopping the host of a workspace, from outside it (the client half).

The SDK and the CLI import this module to attach to a host or launch one; it never imports the
server (uvicorn, FastAPI, the services), which lives in ``toolkit.host`` and is only ever run in
the host's own process (``python -m toolkit.host``).  The arrow points down: ``toolkit.host.daemon``
imports the shared pieces from here, never the other way round.

The host runs detached in its own session (so ``stop`` can end the whole process group, model
instances and Dask workers included) and holds an exclusive lock on ``endpoints/host.lock`` for
its lifetime: a second host on the same home cannot start, however the two are launched.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import Conflict, HostError
from .home import Home

__all__ = [
    "HostInfo", "read_host", "start_background", "stop", "port_free", "lock_path", "pid_alive",
    "DEFAULT_PORT", "PRIVATE_UMASK",
]

DEFAULT_PORT = 5080
# Everything the host and its children (instances, Dask workers) create is owner-only: the
# state holds keys, and logs and job outputs may hold scored data.
PRIVATE_UMASK = 0o077


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


def pid_alive(pid: int) -> bool:
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


def lock_path(home: Home) -> Path:
    return home.endpoints / "host.lock"


def _lock_held(home: Home) -> bool:
    path = lock_path(home)
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
    if not pid_alive(info.pid) or not _lock_held(home):
        return None
    return info


def port_free(host: str, port: int) -> bool:
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
    if port and not port_free(host, port):
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
    while time.monotonic() < deadline and pid_alive(info.pid):
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
