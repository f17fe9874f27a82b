"""The real ``endpoints tui`` in an 80x24 tmux pane against a real host with traffic flowing:
keys in, screen text out (a private tmux server, killed at the end)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")


class Pane:
    """One tmux session on a private server (``-L``), so the test never touches another server."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], size: tuple[int, int] = (80, 24)) -> None:
        self.server = f"tui-test-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.tmux("new-session", "-d", "-s", "ui", "-x", str(size[0]), "-y", str(size[1]), "-c", str(cwd),
                  *[a for k in ("ENDPOINTS_HOME", "TERM") if k in env for a in ("-e", f"{k}={env[k]}")],
                  f"{command}; sleep 60", first=True)
        # No delay after Escape: a key sent right after it must not merge into an Alt- chord.
        self.tmux("set-option", "-s", "escape-time", "0")

    def tmux(self, *args: str, first: bool = False) -> str:
        base = ["tmux", "-L", self.server] + (["-f", "/dev/null"] if first else [])
        out = subprocess.run(base + list(args), capture_output=True, text=True, env=self.env, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "ui")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "ui", key)
            time.sleep(0.3)

    def command(self) -> str:
        return self.tmux("list-panes", "-t", "ui", "-F", "#{pane_current_command}").strip()

    def wait_for(self, check: Callable[[str], Any], what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            found = check(text)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{text}")
            time.sleep(0.3)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True, env=self.env, timeout=30)


def pane_env(home: Path) -> dict[str, str]:
    """The test's environment without PYTHONPATH (a folder on it could shadow the app's packages)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ENDPOINTS_HOME"] = str(home)
    env["TERM"] = "xterm-256color"
    return env


def test_endpoints_tui_in_tmux_shows_endpoints_and_live_figures(workspace: Any) -> None:
    import tui
    from toolkit.demo.data import CHURN_FEATURES, churn_frame

    ws = workspace
    ws.online_endpoints.create_or_update({"name": "tmux-live"})
    ws.online_deployments.create_or_update(
        {"name": "steady", "endpoint_name": "tmux-live", "model": "models:/churn/1", "instance_type": "cpu-nano"},
        all_traffic=True)
    rows = churn_frame(4)[CHURN_FEATURES]
    stop = threading.Event()

    def traffic() -> None:  # a steady trickle, so the live figures are above zero
        while not stop.is_set():
            ws.online_endpoints.invoke("tmux-live", rows)
            time.sleep(0.05)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    # Run from the folder holding the packages under test, as `endpoints tui` would find them.
    root = Path(tui.__file__).parent.parent
    pane = Pane(f"{sys.executable} -m toolkit tui", root, pane_env(ws.home.root))
    try:
        pane.wait_for(lambda s: "Models" in s and "churn" in s, "the Models view")
        pane.keys("2")
        pane.wait_for(lambda s: "tmux-live" in s and "steady" in s and "Succeeded" in s, "the endpoint in the table")
        pane.keys("3")
        figure = pane.wait_for(lambda s: [float(v) for v in re.findall(r"req/s ([0-9.]+)/s", s) if float(v) > 0],
                               "a live requests/s figure above 0")
        assert figure
        screen = pane.screen()
        assert "tmux-live" in screen and re.search(r"p50 [0-9.]+ ms", screen), screen
        assert all(len(line) <= 80 for line in screen.splitlines())
        pane.keys("F1")
        pane.wait_for(lambda s: "Endpoints TUI keys" in s, "the help screen")
        pane.keys("Escape", "C-q")
        pane.wait_for(lambda s: "Traceback" not in s and "Models" not in s, "the app to leave the screen")
        deadline = time.monotonic() + 20
        while pane.command() != "sleep":
            assert time.monotonic() < deadline, f"the app did not quit: {pane.command()}\n{pane.screen()}"
            time.sleep(0.2)
        assert "Traceback" not in pane.screen()
    finally:
        stop.set()
        pane.kill()
        sender.join(timeout=10)


def test_no_host_says_so_instead_of_crashing(tmp_path: Path) -> None:
    import tui

    home = tmp_path / "no-host-home"
    pane = Pane(f"{sys.executable} -m tui", Path(tui.__file__).parent.parent, pane_env(home))
    try:
        pane.wait_for(lambda s: "No host is running" in s and "Start a host" in s, "the no-host screen")
        pane.keys("C-q")
        deadline = time.monotonic() + 20
        while pane.command() != "sleep":
            assert time.monotonic() < deadline, f"the app did not quit\n{pane.screen()}"
            time.sleep(0.2)
        assert "Traceback" not in pane.screen()
    finally:
        pane.kill()
