"""SVG snapshots of the main views at 80x24, drawn from fixed data (``tui.sample``), cursor blink off.

Update after an intended change: ``pytest tests/test_tui_snapshots.py --snapshot-update``; the report
of a failure shows both pictures side by side.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tui_helpers import until

pytest.importorskip("pytest_textual_snapshot")

SIZE = (80, 24)
MAIN_WIDGET = {"models": "models-table", "endpoints": "endpoints-table", "live": "live-cards", "jobs": "jobs-table",
               "test": "test-request"}


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Event times are shown in local time: pin the zone so the pictures match everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def sample() -> Any:
    from tui.sample import sample_app

    return sample_app()


def goto(view: str) -> Any:
    async def run_before(pilot: Any) -> None:
        pilot.app.action_view(view)
        await until(pilot, lambda: getattr(pilot.app.focused, "id", None) == MAIN_WIDGET[view],
                    f"the {view} view to take the focus")
    return run_before


@pytest.mark.parametrize("view", ["models", "endpoints", "live", "jobs", "test"])
def test_main_views(snap_compare: Any, view: str) -> None:
    assert snap_compare(sample(), terminal_size=SIZE, run_before=goto(view))


def test_traffic_editor_refusing_70_20(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        from tui.screens.traffic import TrafficScreen

        pilot.app.action_view("endpoints")
        await until(pilot, lambda: pilot.app.focused is not None and pilot.app.focused.id == "endpoints-table",
                    "the endpoints table to take the focus")
        await pilot.press("t")
        dialog = await until(pilot, lambda: isinstance(pilot.app.screen, TrafficScreen) and pilot.app.screen,
                             "the traffic editor")
        dialog.query_one("#t1").value = "20"
        await pilot.pause()

    assert snap_compare(sample(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        from tui.screens.help import HelpScreen

        await pilot.press("f1")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")

    assert snap_compare(sample(), terminal_size=SIZE, run_before=run_before)


def test_deploy_flow_without_a_host(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        from tui.screens.deploy import DeployScreen

        await until(pilot, lambda: getattr(pilot.app.focused, "id", None) == "models-table",
                    "the models table to take the focus")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(pilot.app.screen, DeployScreen), "the deploy flow")
        await pilot.pause()

    assert snap_compare(sample(), terminal_size=SIZE, run_before=run_before)


def test_no_host_screen(snap_compare: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.app import EndpointsApp

    monkeypatch.chdir(tmp_path)
    home = "/nonexistent/tui-snapshot-home"  # a fixed path: it is printed on the screen
    assert not os.path.exists(home)

    async def run_before(pilot: Any) -> None:
        from tui.screens.nohost import NoHostScreen

        await until(pilot, lambda: isinstance(pilot.app.screen, NoHostScreen), "the no-host screen")
        await pilot.pause()

    assert snap_compare(EndpointsApp(home, cursor_blink=False), terminal_size=SIZE, run_before=run_before)
