"""Registry access over a real MLflow SQLite registry, and the demo models round-tripping."""

from __future__ import annotations

import mlflow
import pytest

from toolkit.demo.data import CHURN_FEATURES, OJ_FEATURES, churn_frame, oj_sales_frame
from toolkit.errors import InvalidSpec, NotFound
from toolkit.registry import Registry


def test_listing_shows_versions_aliases_signatures(home):
    models = {m.name: m for m in Registry(home).list_models()}
    churn = models["churn"]
    assert [v.version for v in churn.versions] == ["1", "2"]
    assert churn.aliases == {"champion": "1", "challenger": "2"}
    v1 = churn.versions[0]
    assert v1.aliases == ["champion"] and v1.has_input_example
    assert {c["name"] for c in v1.signature["inputs"]} == set(CHURN_FEATURES)
    assert "oj-sales" in models and models["oj-sales"].aliases == {"production": "1"}


def test_resolve(home):
    reg = Registry(home)
    assert reg.resolve("models:/churn@champion").uri == "models:/churn/1"
    assert reg.resolve("models:/churn@challenger").label == "churn:2"
    assert reg.resolve("models:/churn/latest").version == "2"
    with pytest.raises(NotFound, match="no alias 'gold'"):
        reg.resolve("models:/churn@gold")
    with pytest.raises(NotFound, match="no version '9'"):
        reg.resolve("models:/churn/9")
    with pytest.raises(NotFound, match="registered model 'nope' does not exist"):
        reg.resolve("models:/nope/1")
    with pytest.raises(InvalidSpec):
        reg.resolve("models:/churn")
    with pytest.raises(NotFound, match="MLmodel"):
        reg.resolve("/does/not/exist")


def test_artifacts_live_in_the_home(home):
    mv = Registry(home).client.get_model_version("churn", "1")
    info = mlflow.models.get_model_info("models:/churn/1")
    assert info.signature is not None
    assert "artifacts" in Registry(home).client.get_run(mv.run_id).info.artifact_uri


@pytest.mark.parametrize("uri, frame, cols", [
    ("models:/churn/1", churn_frame(20, seed=3), CHURN_FEATURES),
    ("models:/churn/2", churn_frame(20, seed=3), CHURN_FEATURES),
    ("models:/oj-sales/1", oj_sales_frame(weeks=1, stores=5), OJ_FEATURES),
])
def test_demo_models_load_and_predict(home, uri, frame, cols):
    model = mlflow.pyfunc.load_model(uri)
    preds = model.predict(frame[cols])
    assert len(preds) == len(frame)
