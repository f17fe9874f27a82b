"""Who may reach the host's local Dask clusters: TLS for the scheduler, and the dashboard setting.

A Dask scheduler runs whatever a connected client asks (``Client.run_on_scheduler``), and the
host's schedulers run *inside the host*, next to the admin token and the endpoint keys.  So a
local cluster accepts only peers holding the host's certificate: every host makes its own
self-signed certificate and key at start (in memory, never on disk) and gives them to its
schedulers, its Nannies and, through the Nanny's start arguments, to the worker processes it
forks.  Dask's TLS is mutual (``CERT_REQUIRED`` on both sides), so a client without that
certificate fails the handshake before any message is read; plain ``tcp://`` fails too.

The dashboard is Dask's HTTP server in the scheduler.  It has no authentication at all: any
local user could read the workers' logs, call stacks, task names and input file names.  It is
therefore off unless the admin asks for it (``ENDPOINTS_BATCH_DASHBOARD``), and then served on
loopback only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["DASHBOARD_ENV", "DashboardSetting", "dashboard_url", "host_security", "stop_dashboard"]

DASHBOARD_ENV = "ENDPOINTS_BATCH_DASHBOARD"
LOOPBACK = "127.0.0.1"

_ON = {"1", "on", "true", "yes"}
_OFF = {"", "0", "off", "false", "no"}
_LOOPBACK_NAMES = {"", LOOPBACK, "localhost"}


def host_security() -> Any:
    """A fresh ``distributed.Security``: one self-signed certificate for every role, TLS required.

    Generating the 2048-bit key takes ~0.15 s; the host does it once, for all its local pools.
    """
    from distributed import Security

    return Security.temporary()


@dataclass(frozen=True)
class DashboardSetting:
    """``ENDPOINTS_BATCH_DASHBOARD``: off (default), ``on`` (a free loopback port), or a port.

    A port is ``8787``, ``:8787``, ``127.0.0.1:8787`` or ``localhost:8787``; the first local
    pool takes it (or a free port when it is taken), later pools take free ports.  Any other
    interface is refused: the dashboard has no authentication, so it stays on loopback (reach
    it from elsewhere through an SSH tunnel).  A refused value leaves the dashboard off and
    says why in ``error`` (the host still starts).
    """

    enabled: bool = False
    port: int = 0
    error: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "DashboardSetting":
        raw = (environ if environ is not None else os.environ).get(DASHBOARD_ENV, "")
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw: str) -> "DashboardSetting":
        value = raw.strip().lower()
        if value in _OFF:
            return cls()
        if value in _ON:
            return cls(enabled=True)
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = "", value
        if host not in _LOOPBACK_NAMES:
            return cls(error=(
                f"{DASHBOARD_ENV}={raw!r}: the Dask dashboard has no authentication, so it is served on "
                f"loopback only; use 'on', a port such as 8787 or '{LOOPBACK}:8787', or 'off' "
                f"(the dashboard stays off)"
            ))
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return cls(error=(
                f"{DASHBOARD_ENV}={raw!r}: expected 'on', 'off' or a port between 1 and 65535 such as 8787 "
                f"(the dashboard stays off)"
            ))
        return cls(enabled=True, port=int(port_text))

    def address(self, first: bool) -> str:
        """The ``dashboard_address`` for a new pool (port 0 when off: it is stopped right away)."""
        port = self.port if self.enabled and first else 0
        return f"{LOOPBACK}:{port}"

    def describe(self) -> str:
        if self.error:
            return f"off ({self.error})"
        if not self.enabled:
            return f"off (set {DASHBOARD_ENV}=on to serve it on {LOOPBACK})"
        return f"on {LOOPBACK}:{self.port or 'a free port'}"


def stop_dashboard(scheduler: Any) -> None:
    """Close the HTTP server a Dask scheduler always starts, and stop advertising it."""
    server = scheduler.services.pop("dashboard", None)
    if server is not None:
        server.stop()


def dashboard_url(scheduler: Any) -> str | None:
    """The URL of a scheduler's dashboard, or None when it was stopped."""
    server = scheduler.services.get("dashboard")
    if server is None:
        return None
    return f"http://{LOOPBACK}:{server.port}/"
