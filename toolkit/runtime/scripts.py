"""Scoring scripts (Azure's ``init()``/``run(data)`` contract), loaded the same way online and in batch.

The script finds its model through ``AZUREML_MODEL_DIR`` (Azure's name) or ``ENDPOINTS_MODEL_DIR``,
may import modules beside it (its folder goes on ``sys.path``), and may define ``init()``, which
runs once before the first ``run``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ..errors import ModelError

__all__ = ["MODEL_DIR_VARS", "load_scoring_script"]

MODEL_DIR_VARS = ("AZUREML_MODEL_DIR", "ENDPOINTS_MODEL_DIR")


def load_scoring_script(script: Path, model_dir: str | Path) -> ModuleType:
    """Import ``script`` and run its ``init()``; the module's ``run(data)`` then scores.

    Every failure (missing file, import error, no ``run``, a failing ``init``) is a
    :class:`ModelError` naming the script.
    """
    if not script.is_file():
        raise ModelError(f"scoring script {str(script)!r} does not exist")
    for var in MODEL_DIR_VARS:
        os.environ[var] = str(model_dir)
    folder = str(script.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = f"_endpoints_score_{abs(hash(str(script.resolve())))}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as err:
        raise ModelError(f"importing scoring script {script.name} failed: {type(err).__name__}: {err}") from err
    if not callable(getattr(module, "run", None)):
        raise ModelError(f"scoring script {script.name} must define run(data)")
    init = getattr(module, "init", None)
    if callable(init):
        try:
            init()
        except Exception as err:
            raise ModelError(f"init() of scoring script {script.name} failed: {type(err).__name__}: {err}") from err
    return module
