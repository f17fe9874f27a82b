"""The generated OpenAPI document validates, and its example scores through a local endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from toolkit.home import Home
from toolkit.runtime.local import clear_cache, score_locally
from toolkit.online.openapi import build_document
from toolkit.registry import Registry
from toolkit.specs import OnlineDeployment

URL = "http://127.0.0.1:5080/endpoints/churn/score"


@pytest.fixture
def registry(home: Home) -> Registry:
    return Registry(home)


def test_document_validates_and_its_example_scores_locally(registry: Registry) -> None:
    sig = registry.signature("models:/churn/1")
    example = registry.input_example("models:/churn/1")
    doc = build_document("churn", URL, sig, example, "key")
    validate(doc)
    assert doc["servers"] == [{"url": "http://127.0.0.1:5080"}]
    op = doc["paths"]["/endpoints/churn/score"]["post"]
    props = doc["components"]["schemas"]["Record"]["properties"]
    assert props["age"] == {"type": "integer", "format": "int64", "minimum": -2 ** 63, "maximum": 2 ** 63 - 1}
    assert props["region"] == {"type": "string", "nullable": True}  # null is a missing string; never in integers
    assert doc["components"]["schemas"]["DataframeSplit"]["properties"]["data"]["minItems"] == 1
    assert {"400", "401", "408", "413", "415", "424", "429", "503"} <= set(op["responses"])
    assert doc["security"] == [{"bearerAuth": []}]

    body = json.dumps(op["requestBody"]["content"]["application/json"]["example"]).encode()
    spec = OnlineDeployment(name="blue", endpoint_name="churn", model="models:/churn@champion")
    status, out = score_locally(spec, body, "application/json", registry)
    assert status == 200 and len(out["predictions"]) == len(example.head(5))
    status, out = score_locally(spec, op["requestBody"]["content"]["text/csv"]["example"].encode(), "text/csv", registry)
    assert status == 200 and len(out["predictions"]) == len(example.head(5))


def test_auth_none_and_the_registry_signature_form(registry: Registry) -> None:
    sig = registry.get_model("oj-sales").versions[0].signature  # the dict form the registry reports
    doc = build_document("oj-sales", "http://localhost:5080/endpoints/oj-sales/score", sig, None, "none")
    validate(doc)
    assert "security" not in doc and "401" not in doc["paths"]["/endpoints/oj-sales/score"]["post"]["responses"]
    assert doc["components"]["schemas"]["Record"]["properties"]["price"]["type"] == "number"


def test_models_without_a_tabular_signature_still_get_a_valid_document() -> None:
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    import numpy as np

    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4))]),
                         outputs=Schema([TensorSpec(np.dtype("float32"), (-1,))]))
    validate(build_document("tensors", URL, sig, None, "token"))
    validate(build_document("nothing", URL, None, None, "key"))


def test_local_scoring_errors_match_the_server(registry: Registry, tmp_path: Path) -> None:
    spec = OnlineDeployment(name="blue", endpoint_name="churn", model="models:/churn/1")
    status, out = score_locally(spec, b'{"dataframe_records": [{"age": 1}]}', "application/json", registry)
    assert status == 400 and out["error_code"] == "InvalidInput" and "tenure_months" in out["message"]
    status, out = score_locally(spec, b"{", "application/json", registry)
    assert status == 400 and "line 1, column 2" in out["message"]
    status, out = score_locally(spec, b"x", "application/xml", registry)
    assert status == 415
    status, out = score_locally(spec.model_copy(update={"model": "models:/churn/9"}), b"{}", "application/json", registry)
    assert status == 404

    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text(
        "import os\n"
        "def init():\n    global seen\n    seen = os.environ['AZUREML_MODEL_DIR']\n"
        "def run(data):\n"
        "    if isinstance(data, dict) and data.get('boom'):\n        raise RuntimeError('boom requested')\n"
        "    return {'rows': len(data), 'model_dir': bool(seen), 'flag': os.environ.get('MY_FLAG')}\n"
    )
    scripted = OnlineDeployment.model_validate({
        "name": "green", "endpoint_name": "churn", "model": "models:/churn/1",
        "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        "environment_variables": {"MY_FLAG": "on"},
    })
    status, out = score_locally(scripted, b'{"dataframe_records": [{"a": 1}, {"a": 2}]}', "application/json", registry)
    assert (status, out) == (200, {"rows": 2, "model_dir": True, "flag": "on"})
    status, out = score_locally(scripted, b'{"boom": true}', "application/json", registry)
    assert status == 424 and "boom requested" in out["message"]
    clear_cache()
