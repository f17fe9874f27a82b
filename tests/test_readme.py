"""The README works as written: after `make demo`, every ```bash and ```python block runs, in
order, on a fresh workspace, without a name clash or a silent reset of what the demo made."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from doc_blocks import code_blocks, run_blocks
from toolkit.home import Home
from toolkit.host import daemon

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(1800)  # the demo, two deployments, a batch job and two model profiles, one after another
def test_readme_blocks_run_in_order_after_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for var in ("ENDPOINTS_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)
    clone = tmp_path / "clone"          # what a reader's clone holds that the README refers to
    shutil.copytree(ROOT / "examples", clone / "examples")
    home = Home(clone / "mlruns")       # the default workspace: ./mlruns
    env = dict(os.environ)
    blocks = code_blocks(ROOT / "README.md")
    assert blocks[0][1].lstrip().startswith("make demo"), "the README starts with its set-up block"
    try:
        # `make demo` is the set-up and `make test` this very suite: the demo runs here as the
        # Makefile runs it, and the README's `make` lines are skipped.
        demo = subprocess.run([sys.executable, "-m", "toolkit", "demo", "--port", str(free_port())], cwd=clone,
                              env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "Hint:" not in demo.stdout + demo.stderr  # no MLflow hint repeated per model
        assert (home.root / "demo-data" / "oj-weekly").is_dir()

        churn_before = _endpoint(home, "churn")
        ns = run_blocks(blocks, clone, env, source="README.md", skip_line=lambda line: line.startswith("make "))

        ws = ns["ws"]
        churn = ws.online_endpoints.get("churn").to_dict()
        assert churn["traffic"] == {"blue": 90, "green": 10}            # set back explicitly, not reset
        assert churn["description"] == churn_before["description"]
        assert {d.name: d.instance_count for d in ws.online_deployments.list("churn")} == {"blue": 2, "green": 1}
        names = {e.name for e in ws.online_endpoints.list()}
        assert {"churn", "churn-cli", "churn-sdk", "iris-readme"} <= names
        assert ns["job"].state == "Completed" and len(ns["job"].outputs()) > 0
    finally:
        daemon.stop(home)


def _endpoint(home: Home, name: str) -> dict:
    from toolkit import Workspace

    with Workspace(home, start=False) as ws:
        return ws.online_endpoints.get(name).to_dict()
