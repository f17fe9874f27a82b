"""The notebooks run top to bottom against a real host, as a user would run them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import free_port
from toolkit.host import daemon

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["quickstart", "safe-rollout", "batch-scoring", "online-vs-batch"])
def test_notebook_runs(home, monkeypatch, name):
    monkeypatch.setenv("ENDPOINTS_PORT", str(free_port()))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(home.root)}}).execute()
    finally:
        daemon.stop(home)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
