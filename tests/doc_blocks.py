"""Run a Markdown file's ```bash and ```python blocks in order, as a reader would.

Python blocks share one namespace (a reader's one session); bash blocks run with ``bash -e`` in
the same folder, with the ``endpoints`` command of this interpreter first on PATH.  Other fences
(```sh for servers that run until Ctrl-C, ```yaml, ```text) are for reading only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

__all__ = ["code_blocks", "run_blocks"]

_FENCE = re.compile(r"^```(bash|python)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def code_blocks(markdown: Path) -> list[tuple[str, str]]:
    """(language, code) of every ```bash and ```python block, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(markdown.read_text())]


def _bash_env(env: dict[str, str]) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**env, "PATH": bin_dir + os.pathsep + env.get("PATH", "")}


def run_blocks(blocks: list[tuple[str, str]], cwd: Path, env: dict[str, str], *, source: str,
               skip_line: Callable[[str], bool] = lambda line: False, timeout: float = 900) -> dict[str, Any]:
    """Run ``blocks``; an AssertionError names the failing block and shows its output."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    old_cwd = os.getcwd()
    # The docs' Python runs in this process: the environment it changes (mlflow.set_tracking_uri
    # exports MLFLOW_TRACKING_URI for child processes) is restored afterwards, so hosts started by
    # later tests do not inherit the docs' registry.
    old_env = dict(os.environ)
    os.chdir(cwd)
    try:
        for i, (lang, code) in enumerate(blocks, 1):
            where = f"{source} block {i} ({lang})"
            if lang == "bash":
                script = "\n".join(line for line in code.splitlines() if not skip_line(line))
                if not script.strip():
                    continue
                proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=_bash_env(env),
                                      capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
                if proc.returncode != 0:
                    raise AssertionError(f"{where} exited {proc.returncode}:\n{code}\n--- stdout\n{proc.stdout[-4000:]}"
                                         f"\n--- stderr\n{proc.stderr[-4000:]}")
            else:
                try:
                    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the docs' own code
                except Exception:
                    raise AssertionError(f"{where} raised:\n{code}\n{traceback.format_exc()}") from None
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return namespace

