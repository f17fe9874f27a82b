"""The core stays headless: importing toolkit pulls in neither textual nor ipywidgets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_toolkit_is_headless():
    code = (
        "import sys, toolkit, toolkit.cli, toolkit.workspace, toolkit.host.app, toolkit.host.control;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'ipywidgets')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_textual_import_in_toolkit_sources():
    for path in (ROOT / "toolkit").rglob("*.py"):
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path
        if "notebook" not in path.parts:
            assert "import ipywidgets" not in text and "from ipywidgets" not in text, path


def test_sdk_and_cli_do_not_import_the_server():
    """The SDK and the CLI attach to a host through toolkit.launcher: building the parser and a
    Workspace's modules must not load the server (uvicorn, FastAPI, Starlette) or toolkit.host."""
    code = (
        "import sys, toolkit, toolkit.cli, toolkit.workspace, toolkit.launcher, toolkit.aio;"
        "toolkit.cli.build_parser();"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('uvicorn', 'fastapi', 'starlette')"
        " or m == 'toolkit.host' or m.startswith('toolkit.host.'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_cli_package_keeps_modules_small():
    for path in list((ROOT / "toolkit" / "cli").glob("*.py")) + [ROOT / "toolkit" / "launcher.py"]:
        assert len(path.read_text().splitlines()) <= 400, path
