"""docs/own-model.md, run as written: train, register into the workspace's registry, deploy
online, predict, score files in batch (every ```python and ```bash block, in order)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doc_blocks import code_blocks, run_blocks
from toolkit.home import Home
from toolkit.host import daemon

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "own-model.md"


def test_own_model_guide_runs_from_training_to_online_and_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for var in ("ENDPOINTS_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)
    blocks = code_blocks(GUIDE)
    assert [lang for lang, _ in blocks].count("python") >= 4 and any("curl" in code for _, code in blocks)
    home = Home(tmp_path / "mlruns")
    try:
        ns = run_blocks(blocks, tmp_path, dict(os.environ), source="docs/own-model.md")
        ws = ns["ws"]
        assert ws.home.root == home.root  # the reader's ./mlruns, not some other registry
        assert ws.online_endpoints.invoke("iris", ns["X"].head(3)) == [0, 0, 0]
        predictions = ns["predictions"]
        assert len(predictions) == 150 and set(predictions.prediction) == {0, 1, 2}
        assert not (tmp_path / "mlruns" / "0").exists()  # artifacts stayed in the workspace's folder
        models = {m.name for m in ws.models.list()}
        assert models == {"iris"}
    finally:
        daemon.stop(home)
