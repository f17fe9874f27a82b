"""Live view of one online endpoint: per deployment requests/s, p50/p99 and errors as sparklines
updated every second, the share each deployment served, mirrored counts, and the endpoint's
events (autoscaler decisions with their reasons, instances starting and failing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Sparkline, Static

from ..format import STATE_STYLE, clock, ms, rate
from .base import DataView

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.views import DeploymentStatus, EndpointStatus, Event

__all__ = ["LiveView", "DeploymentCard"]

# Reasons worth a colour in the event list: scaling decisions and instance trouble.
EVENT_STYLE = {
    "ScaledUp": "bold dodger_blue3", "ScaledDown": "bold dodger_blue3", "InstanceFailed": "red3",
    "ModelLoadFailed": "red3", "InstanceExited": "red3", "LivenessProbeFailed": "red3", "MemoryLimitExceeded": "red3",
    "InstanceNotReady": "dark_orange3", "InstanceReady": "green4", "TrafficUpdated": "magenta3",
}


class DeploymentCard(Vertical):
    """One deployment: a headline of figures and four one-line sparklines."""

    def __init__(self, name: str) -> None:
        super().__init__(classes="card")
        self.deployment = name

    def compose(self) -> ComposeResult:
        yield Static("", classes="card-head")
        with Horizontal(classes="spark-row"):
            yield Label("req/s", classes="spark-label")
            yield Sparkline([], classes="spark rps")
            yield Label("p50", classes="spark-label")
            yield Sparkline([], classes="spark p50")
        with Horizontal(classes="spark-row"):
            yield Label("p99", classes="spark-label")
            yield Sparkline([], classes="spark p99")
            yield Label("errors", classes="spark-label")
            yield Sparkline([], classes="spark errors")

    def show(self, dep: "DeploymentStatus", points: list[Any], share: float | None) -> None:
        s = dep.stats
        served = "-" if share is None else f"{share:.0f}%"
        head = Text.assemble(
            (dep.name, "bold"), " ", (dep.state or "-", STATE_STYLE.get(dep.state or "", "")),
            f"  traffic {dep.traffic}%", f" mirror {dep.mirror}%" if dep.mirror else "",
            "  served ", (served, "bold"),
            f" ({s.served:,})" if s is not None and s.served is not None else "",
            "  mirrored ", (f"{s.mirrored:,}" if s is not None else "-", "bold"), "\n",
            ("  req/s ", "dim"), (rate(s.rps) if s else "-", "bold"),
            ("  p50 ", "dim"), (ms(s.p50_ms) if s else "-", "bold"),
            ("  p99 ", "dim"), (ms(s.p99_ms) if s else "-", "bold"),
            ("  errors ", "dim"), (str(s.errors) if s else "-", "bold red3" if s and s.errors else "bold"),
            ("  inst ", "dim"), f"{sum(1 for i in dep.instances if i.ready)}/{dep.instance_count}",
        )
        self.query_one(".card-head", Static).update(head)
        series = {
            "rps": [p.rps or 0.0 for p in points],
            "p50": [p.p50_ms or 0.0 for p in points],
            "p99": [p.p99_ms or 0.0 for p in points],
            "errors": [float(p.errors or 0) for p in points],
        }
        for cls, data in series.items():
            self.query_one(f".{cls}", Sparkline).data = data or [0.0]


class LiveView(DataView):
    BINDINGS = [
        Binding("[", "previous", "Prev endpoint"),
        Binding("]", "next", "Next endpoint"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.endpoint: str | None = None
        self._cards: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("No online endpoint yet.", id="live-title")
        yield VerticalScroll(id="live-cards", can_focus=True)
        yield Static("", id="live-events")

    def focus_main(self) -> None:
        self.query_one("#live-cards").focus()

    def endpoints(self) -> list["EndpointStatus"]:
        snap = self.app.snapshot
        return list(snap.online_endpoints) if snap is not None else []

    def current(self) -> "EndpointStatus | None":
        eps = self.endpoints()
        for ep in eps:
            if ep.name == self.endpoint:
                return ep
        if eps:
            self.endpoint = eps[0].name
            return eps[0]
        return None

    def select_endpoint(self, name: str) -> None:
        self.endpoint = name
        self.update_view()

    def _step(self, by: int) -> None:
        names = [e.name for e in self.endpoints()]
        if names:
            i = names.index(self.endpoint) if self.endpoint in names else 0
            self.select_endpoint(names[(i + by) % len(names)])

    def action_previous(self) -> None:
        self._step(-1)

    def action_next(self) -> None:
        self._step(1)

    def update_view(self) -> None:
        ep = self.current()
        title = self.query_one("#live-title", Static)
        box = self.query_one("#live-cards", VerticalScroll)
        if ep is None:
            title.update("No online endpoint yet. Deploy one from the Models view (1, then d).")
            box.remove_children()
            self._cards = []
            self.query_one("#live-events", Static).update("")
            return
        others = len(self.endpoints()) - 1
        title.update(Text.assemble(("Live ", "bold"), (ep.name, "bold dodger_blue3"),
                                   f"  {len(ep.deployments)} deployments",
                                   ("  [ ] other endpoints" if others > 0 else "", "dim")))
        names = [d.name for d in ep.deployments]
        if names != self._cards:
            box.remove_children()
            box.mount_all([DeploymentCard(n) for n in names])
            self._cards = names
            self.call_after_refresh(self.update_view)
            return
        served = {d.name: (d.stats.served or 0) if d.stats else 0 for d in ep.deployments}
        total = sum(served.values())
        for card, dep in zip(box.query(DeploymentCard), ep.deployments):
            points = list(self.app.series.get((ep.name, dep.name), ()))
            card.show(dep, points, 100.0 * served[dep.name] / total if total else None)
        self.show_events(ep.name)

    def show_events(self, endpoint: str) -> None:
        events: list["Event"] = [e for e in self.app.events if e.endpoint == endpoint][-6:]
        lines = [Text("events", style="bold")]
        for e in events:
            where = f" {e.deployment}" if e.deployment else ""
            lines.append(Text.assemble((clock(e.ts), "dim"), " ", (e.reason, EVENT_STYLE.get(e.reason, "bold")),
                                       (where, "bold"), " ", e.message, overflow="ellipsis", no_wrap=True))
        if not events:
            lines.append(Text("none yet", style="dim"))
        self.query_one("#live-events", Static).update(Text("\n").join(lines))
