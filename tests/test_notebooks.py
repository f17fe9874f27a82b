"""The notebooks run top to bottom in a real kernel against a real host, as a user would run them.

They share one temporary workspace and host (ENDPOINTS_HOME points every notebook at it; a
notebook's ``Workspace()`` attaches to the running host), in their numbered order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import free_port
from toolkit import Workspace
from toolkit.home import Home
from toolkit.host import daemon

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01-quickstart", "02-safe-rollout", "03-batch-forecast", "04-online-or-batch"]


def test_the_notebooks_are_the_four_stories_committed_clean():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    for name in NAMES:
        raw = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
        assert raw["metadata"]["kernelspec"]["name"] == "python3", name   # no "Select Kernel" dialog
        for cell in raw["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, name
                # Public SDK only: no reaching into the toolkit's internals.
                assert "toolkit.home" not in "".join(cell["source"]) and "toolkit.demo" not in "".join(cell["source"])


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks") / "home"
    old = os.environ.get("ENDPOINTS_HOME")
    os.environ["ENDPOINTS_HOME"] = str(root)
    home = Home(root).ensure()
    ws = Workspace(home, port=free_port())
    try:
        yield home
    finally:
        ws.close()
        daemon.stop(home)
        if old is None:
            os.environ.pop("ENDPOINTS_HOME", None)
        else:
            os.environ["ENDPOINTS_HOME"] = old


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(shared_home, name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    workdir = shared_home.root / "runs" / name
    workdir.mkdir(parents=True)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, "\n".join(f"{e.ename}: {e.evalue}" for e in errors)
    # The widgets rendered as widgets (a widget view in the output), not as a text fallback only.
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, name
