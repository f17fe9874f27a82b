"""Shared fixtures: real registries, real hosts, real ports.  Nothing here is mocked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

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
        _forget_mlflow_env()
    return root


@pytest.fixture(scope="module", autouse=True)
def _no_leaked_mlflow_env() -> Iterator[None]:
    """Each module starts with no MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI left by an earlier one
    (autouse module fixtures run before the module's own, so its hosts and kernels start clean)."""
    _forget_mlflow_env()
    yield


def _forget_mlflow_env() -> None:
    """``mlflow.set_tracking_uri`` also exports MLFLOW_TRACKING_URI (and the registry's), which
    every later child process (hosts, kernels, the CLI) would inherit: a session fixture that
    opened a registry must not leave it there, or later tests register into the template."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)


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


# --- shared, read-only state for whole modules or the whole session ------------------------------

ADVISOR_MODELS = ("models:/churn@champion", "models:/oj-sales@production")


@pytest.fixture(scope="session")
def advisor_measurement(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> tuple[Home, dict[str, Any]]:
    """The demo models of ``ADVISOR_MODELS`` profiled for real, once per session: a home holding
    the measured cache files, and the profiles as the measurement returned them (not from cache).

    Measuring a model takes seconds (a child process imports MLflow, loads the model and times
    predictions); a profile is a property of the model version and the machine, not of a test, so
    one measurement serves every advisor test.
    """
    from toolkit.advisor import profile_model

    root = tmp_path_factory.mktemp("advisor-profiles")
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    home = Home(root).ensure()
    profiles = {uri: profile_model(home, uri) for uri in ADVISOR_MODELS}
    _forget_mlflow_env()
    _point_mlflow_back()
    return home, profiles


@pytest.fixture(scope="session")
def advisor_profile_home(advisor_measurement: tuple[Home, dict[str, Any]]) -> Home:
    """The home in which the session's profiles were measured.  Read-only: only read from it."""
    return advisor_measurement[0]


@pytest.fixture(scope="session")
def advisor_profiles(advisor_measurement: tuple[Home, dict[str, Any]]) -> dict[str, Any]:
    """The session's measured profiles by model URI (``ADVISOR_MODELS``).  Do not modify them."""
    return advisor_measurement[1]


def _point_mlflow_back() -> None:
    """Opening a registry points this process's MLflow at its home; a session fixture set up in
    the middle of a test points it back at the test's own home (``ENDPOINTS_HOME``)."""
    active = os.environ.get("ENDPOINTS_HOME")
    if active:
        Home(active).configure_mlflow()


@pytest.fixture
def profile_cache(home: Home, advisor_profile_home: Home) -> Home:
    """``home`` with the session's measured profiles in its profile cache, so ``advise(home, ...)``
    (in this process, in the host or in the CLI) reads them instead of measuring again."""
    return copy_profiles(home, advisor_profile_home)


@pytest.fixture(scope="session")
def idle_host_context(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A host context (home, store, registry) with no model and no host running, for unit tests
    that build services without starting them.  Opening the registry is the slow part, so one
    serves the session; tests keep their own state in the services they build on it."""
    from toolkit.batch.testing import make_context

    context = make_context(Home(tmp_path_factory.mktemp("idle-host")))
    _forget_mlflow_env()
    _point_mlflow_back()
    return context


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[Home]:
    """Like ``home``, but one per test module: for tests that share a host (``module_workspace``)
    and only read, or only create resources under names no other test of the module uses."""
    root = tmp_path_factory.mktemp("module-home") / "home"
    root.mkdir()
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENDPOINTS_HOME", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        h = Home(root).ensure()
        h.configure_mlflow()
        yield h


@pytest.fixture(scope="module")
def module_workspace(module_home: Home) -> Iterator[Any]:
    """One real host per test module for ``module_home`` (starting a host takes seconds): the
    module's tests must only read, or use names of their own."""
    from toolkit import Workspace
    from toolkit.host import daemon

    ws = Workspace(module_home, port=free_port())
    try:
        yield ws
    finally:
        ws.close()
        daemon.stop(module_home)


def copy_profiles(home: Home, measured_in: Home) -> Home:
    """Put the profiles measured in ``measured_in`` into ``home``'s profile cache."""
    target = home.cache / "profiles"
    target.mkdir(parents=True, exist_ok=True)
    for f in (measured_in.cache / "profiles").glob("*.json"):
        shutil.copy(f, target / f.name)
    return home


# `make test` runs the modules on parallel workers (pytest-xdist, --dist loadfile: a module stays
# on one worker, so its module-scoped hosts start once).  The longest modules start first, so the
# run does not end waiting on one worker that drew a two-minute module last.  Measured with
# `pytest --durations=0`; the order only balances the workers, no test depends on it.
LONGEST_FIRST = (
    "test_readme", "test_mlflow_plugin", "test_notebooks", "test_notebook_browser", "test_online_supervisor",
    "test_batch_durability", "test_batch_jobs", "test_tui_flows", "test_host", "test_own_model",
    "test_notebook_widgets", "test_cli_newcomer", "test_online_bad_inputs", "test_online_protocol",
    "test_advisor", "test_advisor_reality", "test_online_supervisor_autoscale",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.path.stem, len(rank)), order[id(item)]))
