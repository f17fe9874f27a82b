"""Spec rules and YAML loading: every bad field is named with its rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.errors import InvalidSpec
from toolkit.specs import (
    BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint, load_spec, parse_spec,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("data, field, words", [
    ({"name": "churn", "traffic": {"blue": 60, "green": 30}}, "traffic", "sum to 0 or 100"),
    ({"name": "churn_ep"}, "name", "start with a letter"),
    ({"name": "ab"}, "name", "3-32"),
    ({"name": "churn--x"}, "name", "single dashes"),
    ({"name": "churn", "colour": "blue"}, "colour", "unknown field"),
    ({"name": "churn", "mirror_traffic": {"green": 60}}, "mirror_traffic.green", "at most 50"),
    ({"name": "churn", "traffic": {"blue": 100}, "mirror_traffic": {"blue": 10}}, "mirror_traffic.blue", "live traffic"),
    ({"name": "churn", "mirror_traffic": {"green": 10, "red": 10}}, "mirror_traffic", "one deployment"),
    ({"name": "churn", "auth_mode": "password"}, "auth_mode", "key"),
])
def test_online_endpoint_rules(data, field, words):
    with pytest.raises(InvalidSpec) as info:
        parse_spec(OnlineEndpoint, data, source="ep.yml")
    assert field in info.value.details["fields"]
    assert words in info.value.message
    assert info.value.message.startswith("ep.yml: ")


def test_valid_traffic_tables():
    assert parse_spec(OnlineEndpoint, {"name": "churn", "traffic": {"blue": 90, "green": 10}}).traffic["green"] == 10
    assert parse_spec(OnlineEndpoint, {"name": "churn", "traffic": {"blue": 0}}).traffic == {"blue": 0}
    ep = parse_spec(OnlineEndpoint, {"name": "churn", "traffic": {"blue": 100}, "mirror_traffic": {"green": 50}})
    assert ep.mirror_traffic == {"green": 50}


@pytest.mark.parametrize("patch, field", [
    ({"model": "runs:/abc"}, "model"),
    ({"model": "models:/churn"}, "model"),
    ({"instance_type": "gpu-huge"}, "instance_type"),
    ({"instance_count": 0}, "instance_count"),
    ({"scale_settings": {"min_instances": 3, "max_instances": 2}}, "scale_settings"),
    ({"request_settings": {"request_timeout_ms": 0}}, "request_settings.request_timeout_ms"),
])
def test_online_deployment_rules(patch, field):
    data = {"name": "blue", "endpoint_name": "churn", "model": "models:/churn/1", **patch}
    with pytest.raises(InvalidSpec) as info:
        parse_spec(OnlineDeployment, data)
    assert any(f.startswith(field) for f in info.value.details["fields"]), info.value.details


def test_defaults_follow_the_design():
    dep = OnlineDeployment(name="blue", endpoint_name="churn", model="models:/churn@champion")
    assert dep.request_settings.request_timeout_ms == 5000
    assert dep.scale_settings.target_utilization_percentage == 70
    assert dep.instance_type == "cpu-small"
    bd = BatchDeployment(name="forest", endpoint_name="oj-sales", model="models:/oj-sales/1")
    assert (bd.mini_batch_size, bd.error_threshold, bd.output_action) == (10, -1, "append_row")
    assert (bd.retry_settings.max_retries, bd.retry_settings.timeout) == (3, 30)
    assert bd.output_file_name == "predictions.csv" and bd.compute == "local"
    assert bd.resources.instance_count == 1 and bd.max_concurrency_per_instance == 1
    assert BatchEndpoint(name="oj-sales").defaults.deployment_name is None


@pytest.mark.parametrize("patch, field", [
    ({"compute": "my-cluster"}, "compute"),
    ({"output_file_name": "out.json"}, "output_file_name"),
    ({"error_threshold": -2}, "error_threshold"),
    ({"output_action": "overwrite"}, "output_action"),
])
def test_batch_deployment_rules(patch, field):
    data = {"name": "forest", "endpoint_name": "oj-sales", "model": "models:/oj-sales/1", **patch}
    with pytest.raises(InvalidSpec) as info:
        parse_spec(BatchDeployment, data)
    assert field in info.value.details["fields"]


def test_load_yaml_reports_file_field_and_reason(tmp_path):
    bad = tmp_path / "ep.yml"
    bad.write_text("name: churn\ntraffic:\n  blue: 90\n")
    with pytest.raises(InvalidSpec, match=r"ep.yml: traffic: must sum to 0 or 100, got 90"):
        load_spec(OnlineEndpoint, bad)
    broken = tmp_path / "broken.yml"
    broken.write_text("name: [churn\n")
    with pytest.raises(InvalidSpec, match=r"broken.yml: not valid YAML at line"):
        load_spec(OnlineEndpoint, broken)
    with pytest.raises(InvalidSpec, match="file not found"):
        load_spec(OnlineEndpoint, tmp_path / "missing.yml")
    listy = tmp_path / "list.yml"
    listy.write_text("- name: churn\n")
    with pytest.raises(InvalidSpec, match="mapping"):
        load_spec(OnlineEndpoint, listy)


def test_overrides_and_relative_code(tmp_path):
    (tmp_path / "src").mkdir()
    f = tmp_path / "dep.yml"
    f.write_text("name: blue\nendpoint_name: churn\nmodel: models:/churn/1\n"
                 "code_configuration: {code: src, scoring_script: score.py}\n")
    spec = load_spec(OnlineDeployment, f, ["instance_count=3", "request_settings.request_timeout_ms=900"])
    assert spec.instance_count == 3 and spec.request_settings.request_timeout_ms == 900
    assert Path(spec.code_configuration.code) == (tmp_path / "src").resolve()


def test_examples_are_valid():
    kinds = {"churn-endpoint.yml": OnlineEndpoint, "churn-blue.yml": OnlineDeployment,
             "churn-green.yml": OnlineDeployment, "oj-sales-endpoint.yml": BatchEndpoint,
             "oj-sales-deployment.yml": BatchDeployment}
    for name, cls in kinds.items():
        load_spec(cls, EXAMPLES / name)


def test_committed_schemas_are_current(tmp_path):
    from toolkit.schemas import write_schemas

    committed = Path(__file__).resolve().parents[1] / "docs" / "schemas"
    for path in write_schemas(tmp_path):
        assert json.loads(path.read_text()) == json.loads((committed / path.name).read_text()), (
            f"{path.name} is stale: run `make schemas`"
        )
