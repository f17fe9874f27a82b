"""The one-line bar at the top: which host, how long it has been up, what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.views import Snapshot

__all__ = ["HostBar"]


def _uptime(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class HostBar(Static):
    def on_mount(self) -> None:
        self.update(Text.assemble(("Endpoints ", "bold"), ("connecting...", "dim")))

    def set_host(self, url: str, home: Path) -> None:
        self.update(Text.assemble(("Endpoints ", "bold"), (url, "bold dodger_blue3"), f"  {home}"))

    def set_down(self, reason: str) -> None:
        self.update(Text.assemble(("Endpoints ", "bold"), ("no host", "bold red3"), f"  {reason}"))

    def set_snapshot(self, snap: "Snapshot", now: float) -> None:
        jobs = sum(1 for j in snap.jobs if not j.done)
        self.update(Text.assemble(
            ("Endpoints ", "bold"), (snap.host.url, "bold dodger_blue3"),
            f"  up {_uptime(snap.host.uptime_s)}  ",
            (f"{len(snap.online_endpoints)}", "bold"), " online  ",
            (f"{len(snap.batch_endpoints)}", "bold"), " batch  ",
            (f"{jobs}", "bold"), " job running" if jobs == 1 else " jobs running",
        ))
