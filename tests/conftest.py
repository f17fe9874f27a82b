"""Shared fixtures: real registries, real hosts, real ports.  Nothing here is mocked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from toolkit.home import Home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the demo models registered once per test session (a template to copy)."""
    from toolkit.demo.models import register_demo_models

    root = tmp_path_factory.mktemp("demo-registry")
    home = Home(root)
    old = os.environ.get("ENDPOINTS_HOME")
    os.environ["ENDPOINTS_HOME"] = str(root)
    try:
        register_demo_models(home)
    finally:
        if old is None:
            os.environ.pop("ENDPOINTS_HOME", None)
        else:
            os.environ["ENDPOINTS_HOME"] = old
    return root


@pytest.fixture
def home(tmp_path: Path, demo_registry: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A fresh workspace home holding the demo models (churn v1/v2, oj-sales v1), as ENDPOINTS_HOME.

    The registry is a copy of the session template; artifact paths inside mlflow.db point at the
    template's artifacts folder, which lives for the whole session.
    """
    root = tmp_path / "home"
    root.mkdir()
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    monkeypatch.setenv("ENDPOINTS_HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    h = Home(root).ensure()
    h.configure_mlflow()
    return h


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    root = tmp_path / "empty-home"
    monkeypatch.setenv("ENDPOINTS_HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Home(root).ensure()


@pytest.fixture
def workspace(home: Home):
    """A real host for ``home`` on a free loopback port, driven through the SDK; stopped afterwards."""
    from toolkit import Workspace
    from toolkit.host import daemon

    ws = Workspace(home, port=free_port())
    try:
        yield ws
    finally:
        ws.close()
        daemon.stop(home)


def run_cli(*args: str, home: Home | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real ``endpoints`` command in a subprocess, as a user would."""
    import sys

    env = dict(os.environ)
    if home is not None:
        env["ENDPOINTS_HOME"] = str(home.root)
    return subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
