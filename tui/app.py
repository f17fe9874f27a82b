"""``endpoints tui``: the Textual cockpit of a workspace, a client of :class:`toolkit.Workspace`.

The app owns the connection and one poller: every second a thread worker asks the host for one
:class:`toolkit.views.Snapshot` (endpoints, deployments with live stats, jobs, new events) and the
views redraw from it.  Every other host call also runs in a worker, so the screen never freezes.
Given a fixed ``snapshot`` (tests, screenshots) the app never connects and shows that data.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, TabbedContent, TabPane, TextArea

from .commands import ActionsProvider
from .messages import HostConnected, HostLost, ModelsLoaded, OpenDeploy, OpenLive, OpenTest, SnapshotUpdated
from .widgets.hostbar import HostBar
from .widgets.endpoints_view import EndpointsView
from .widgets.jobs_view import JobsView
from .widgets.live_view import LiveView
from .widgets.models_view import ModelsView
from .widgets.test_panel import TestPanel

if TYPE_CHECKING:  # pragma: no cover
    from toolkit import Workspace
    from toolkit.views import Event, Snapshot, StatsWindow

__all__ = ["EndpointsApp", "main"]

SERIES_POINTS = 120  # two minutes of one-second points per deployment
EVENTS_KEPT = 300
VIEWS = ("models", "endpoints", "live", "jobs", "test")


class EndpointsApp(App[int]):
    """The cockpit: Models, Endpoints, Live, Jobs and Test tabs over one workspace host."""

    CSS_PATH = "endpoints.tcss"
    TITLE = "Endpoints"
    AUTO_FOCUS = "#models-table"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("ctrl+p", "command_palette", "Palette", show=False),
        Binding("1", "view('models')", "Models", show=False),
        Binding("2", "view('endpoints')", "Endpoints", show=False),
        Binding("3", "view('live')", "Live", show=False),
        Binding("4", "view('jobs')", "Jobs", show=False),
        Binding("5", "view('test')", "Test", show=False),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(
        self, home: str | os.PathLike[str] | None = None, *, snapshot: "Snapshot | None" = None,
        models: list[dict[str, Any]] | None = None, series: dict[tuple[str, str], list["StatsWindow"]] | None = None,
        poll_interval: float = 1.0, cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        from toolkit.home import Home

        self.home = Home.resolve(home)
        self.fixed = snapshot is not None
        self.ws: "Workspace | None" = None
        self.snapshot: "Snapshot | None" = snapshot
        self.models: list[dict[str, Any]] = list(models or [])
        self.events: deque["Event"] = deque(snapshot.events.events if snapshot else (), maxlen=EVENTS_KEPT)
        self.event_cursor = snapshot.events.cursor if snapshot else 0
        self.series: dict[tuple[str, str], deque["StatsWindow"]] = {
            key: deque(points, maxlen=SERIES_POINTS) for key, points in (series or {}).items()
        }
        self.poll_interval = poll_interval
        self.cursor_blink = cursor_blink
        self._polling = False
        self._poll_error: str | None = None
        self._poll_timer: Any = None

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HostBar(id="hostbar")
        with TabbedContent(initial="models", id="tabs"):
            with TabPane("1 Models", id="models"):
                yield ModelsView()
            with TabPane("2 Endpoints", id="endpoints"):
                yield EndpointsView()
            with TabPane("3 Live", id="live"):
                yield LiveView()
            with TabPane("4 Jobs", id="jobs"):
                yield JobsView()
            with TabPane("5 Test", id="test"):
                yield TestPanel()
        yield Footer()

    def on_mount(self) -> None:
        self.apply_cursor_blink(self.screen)
        if self.fixed:
            self.post_message(ModelsLoaded())
            self.post_message(SnapshotUpdated())
        else:
            self.connect()

    def apply_cursor_blink(self, root: Any) -> None:
        """Turn the cursor blink off below ``root`` when asked (stable screenshots)."""
        if self.cursor_blink:
            return
        for widget in root.query("Input, TextArea"):
            if isinstance(widget, (Input, TextArea)):
                widget.cursor_blink = False

    @property
    def main(self) -> Any:
        """The screen holding the tabs (dialogs and other screens stack above it)."""
        if not self.screen_stack:  # quitting: every screen is gone
            raise NoMatches("the app has no screen")
        return self.screen_stack[0]

    def now(self) -> float:
        """The time the views measure 'ago' from: the snapshot's, so fixed data renders the same."""
        if self.fixed and self.snapshot is not None:
            return self.snapshot.taken_at
        return time.time()

    # --- connection -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="connect", exit_on_error=False)
    def connect(self, start: bool = False) -> None:
        """Attach to the host of ``self.home`` (or start one when asked)."""
        from toolkit import Workspace
        from toolkit.errors import ToolkitError

        try:
            ws = Workspace(self.home, start=start)
            ws.status()
        except ToolkitError as err:
            self.post_message(HostLost(str(err)))
            return
        except Exception as err:  # a host that fails to start: say so, never a traceback
            self.post_message(HostLost(f"{type(err).__name__}: {err}"))
            return
        old, self.ws = self.ws, ws
        if old is not None:
            old.close()
        self.post_message(HostConnected(ws.url))

    def on_host_connected(self, message: HostConnected) -> None:
        from .screens.nohost import NoHostScreen

        if isinstance(self.screen, NoHostScreen):
            self.pop_screen()
        bar = self._hostbar()
        if bar is not None:
            bar.set_host(message.url, self.home.root)
        self.load_models()
        if self._poll_timer is None:
            self._poll_timer = self.set_interval(self.poll_interval, self.poll)
        self.poll()

    def on_host_lost(self, message: HostLost) -> None:
        from .screens.nohost import NoHostScreen

        bar = self._hostbar()
        if bar is not None:
            bar.set_down(message.reason)
        if isinstance(self.screen, NoHostScreen):
            self.screen.show_reason(message.reason)
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self.push_screen(NoHostScreen(self.home.root, message.reason))

    def _hostbar(self) -> HostBar | None:
        try:
            return self.main.query_one(HostBar)
        except NoMatches:  # quitting
            return None

    # --- polling --------------------------------------------------------------------------------
    def poll(self) -> None:
        if self.ws is not None and not self._polling:
            self._polling = True
            self.fetch_snapshot()

    @work(thread=True, group="poll", exit_on_error=False)
    def fetch_snapshot(self) -> None:
        from toolkit.errors import HostNotRunning, ToolkitError

        snap = None
        try:
            assert self.ws is not None
            snap = self.ws.snapshot(events_after=self.event_cursor)
        except HostNotRunning as err:
            self.post_message(HostLost(str(err)))
        except ToolkitError as err:
            self.call_from_thread(self._poll_failed, str(err))
        except Exception as err:  # shown, and the next tick tries again
            self.call_from_thread(self._poll_failed, f"{type(err).__name__}: {err}")
        finally:
            self.call_from_thread(self._poll_done, snap)

    def _poll_failed(self, message: str) -> None:
        # Once per distinct problem: a failing poll every second must not bury the screen in toasts.
        if message != self._poll_error:
            self._poll_error = message
            self.notify(message, title="host", severity="warning", timeout=8)

    def _poll_done(self, snap: "Snapshot | None") -> None:
        self._polling = False
        if snap is not None:
            self._poll_error = None
            self.take_snapshot(snap)

    def take_snapshot(self, snap: "Snapshot") -> None:
        """Keep a frame: the latest state, new events, and one more point on each live series."""
        self.snapshot = snap
        self.events.extend(snap.events.events)
        self.event_cursor = snap.events.cursor
        for ep in snap.online_endpoints:
            for dep in ep.deployments:
                if dep.stats is None:
                    continue
                points = self.series.setdefault((ep.name, dep.name), deque(maxlen=SERIES_POINTS))
                if not points or points[-1].ts != dep.stats.ts:
                    points.append(dep.stats)
        self.post_message(SnapshotUpdated())
        if snap.events.more:  # a burst of events: fetch the rest now rather than in a second
            self.poll()

    def on_snapshot_updated(self, _: SnapshotUpdated) -> None:
        try:
            bar, views = self.main.query_one(HostBar), self.data_views()
        except NoMatches:  # the app is quitting and its widgets are gone: nothing to redraw
            return
        if self.snapshot is not None:
            bar.set_snapshot(self.snapshot, self.now())
        for view in views:
            view.update_view()

    def data_views(self) -> list[Any]:
        return [self.main.query_one(cls) for cls in (ModelsView, EndpointsView, LiveView, JobsView, TestPanel)]

    @work(thread=True, group="models", exit_on_error=False)
    def load_models(self) -> None:
        from toolkit.errors import ToolkitError

        try:
            assert self.ws is not None
            models = [m.to_dict() for m in self.ws.models.list()]
        except ToolkitError as err:
            self.call_from_thread(self.notify, str(err), title="models", severity="error")
            return
        self.models = models
        self.post_message(ModelsLoaded())

    def on_models_loaded(self, _: ModelsLoaded) -> None:
        try:
            views = [self.main.query_one(ModelsView), self.main.query_one(TestPanel)]
        except NoMatches:
            return
        for view in views:
            view.update_view()

    # --- cross-view navigation ------------------------------------------------------------------
    def on_open_deploy(self, message: OpenDeploy) -> None:
        from .screens.deploy import DeployScreen

        if self.ws is None and not self.fixed:
            self.notify("no host is running", severity="error")
            return
        self.push_screen(DeployScreen(message.model_uri, message.model))

    def on_open_live(self, message: OpenLive) -> None:
        self.main.query_one(LiveView).select_endpoint(message.endpoint)
        self.action_view("live")

    def on_open_test(self, message: OpenTest) -> None:
        self.main.query_one(TestPanel).aim(message.endpoint, message.deployment)
        self.action_view("test")

    # --- actions --------------------------------------------------------------------------------
    def action_view(self, name: str) -> None:
        if name in VIEWS:
            self.main.query_one("#tabs", TabbedContent).active = name
            view = self.data_views()[VIEWS.index(name)]
            # Focus once the pane is shown: a hidden widget cannot take the focus.
            self.call_after_refresh(view.focus_main)

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_refresh(self) -> None:
        if self.ws is not None:
            self.load_models()
            self.poll()

    def view_action(self, view: str, action: str) -> None:
        """Switch to ``view`` and run one of its actions (what the command palette does)."""
        self.action_view(view)
        target = self.data_views()[VIEWS.index(view)]
        self.call_after_refresh(getattr(target, f"action_{action}"))

    def on_unmount(self) -> None:
        if self.ws is not None:
            self.ws.close()


def main(home: str | os.PathLike[str] | None = None) -> int:
    """Run the TUI on the workspace ``home`` (default: $ENDPOINTS_HOME or ./mlruns)."""
    app = EndpointsApp(home)
    app.run()
    return app.return_code or 0
