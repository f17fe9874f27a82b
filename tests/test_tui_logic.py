"""The TUI's rules without a screen: traffic checks, form parsing, plans, examples, the palette;
and the fixed-data app driven through its keys (no host)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tui_helpers import screen_text, until


@pytest.mark.parametrize("traffic, mirror, problem", [
    ({"blue": 70, "green": 30}, {}, None),
    ({"blue": 0, "green": 0}, {}, None),
    ({"blue": 70, "green": 20}, {}, "traffic sums to 90%; it must sum to 0 or 100"),
    ({"blue": 100, "green": 0}, {"green": 60}, "mirror green: at most 50%, got 60%"),
    ({"blue": 100, "green": 0}, {"blue": 10}, "only a deployment without live traffic can be mirrored"),
    ({"a": 100, "b": 0, "c": 0}, {"b": 10, "c": 10}, "only one deployment may be mirrored"),
    ({"blue": 100, "green": 0}, {"green": 50}, None),
])
def test_traffic_rules(traffic: dict[str, int], mirror: dict[str, int], problem: str | None) -> None:
    from tui.traffic import traffic_problems

    found = traffic_problems(traffic, mirror)
    if problem is None:
        assert found == []
    else:
        assert any(problem in p for p in found), found


def test_percent_parsing_names_the_field() -> None:
    from tui.traffic import parse_percent

    assert parse_percent("", "live blue") == (0, None)
    assert parse_percent(" 70 ", "live blue") == (70, None)
    assert parse_percent("7x", "live blue") == (None, "live blue: '7x' is not a whole number")
    assert parse_percent("101", "mirror green")[1] == "mirror green: must be between 0 and 100, got 101"


def test_job_overrides_parsing() -> None:
    from tui.screens.job_submit import parse_overrides

    assert parse_overrides("mini_batch_size=10, instance_count=2") == ({"mini_batch_size": 10, "instance_count": 2}, None)
    assert parse_overrides("") == ({}, None)
    assert "unknown setting 'speed'" in parse_overrides("speed=3")[1]
    assert "is not key=value" in parse_overrides("mini_batch_size")[1]
    assert "must be a whole number" in parse_overrides("max_retries=two")[1]


def test_workload_form_to_advisor_fields() -> None:
    from tui.screens.deploy_plan import WORKLOAD_FIELDS, workload_from_form

    form = {k: v[1] for k, v in WORKLOAD_FIELDS.items()}
    workload, problem = workload_from_form("models:/churn/1", form)
    assert problem is None
    assert workload["frequency"] == "per request" and workload["peak_rps"] == 10.0 and workload["latency_ms"] == 200.0
    assert "rows_per_run" not in workload and workload["prices"]["core_hour"] == 0.04048
    weekly = {**form, "frequency": "every 1 week", "rows_per_run": "480", "deadline": "12h"}
    workload, problem = workload_from_form("models:/oj-sales/1", weekly)
    assert problem is None and workload["rows_per_run"] == 480 and workload["deadline"] == "12h"
    assert "peak_rps" not in workload  # request rates do not apply to a schedule
    assert workload_from_form("m", {**weekly, "rows_per_run": ""})[1].startswith("rows/run:")
    assert workload_from_form("m", {**form, "peak_rps": "lots"})[1] == "peak req/s: 'lots' is not a number"
    assert workload_from_form("m", {**form, "frequency": " "})[1].startswith("how often:")


def test_deploy_plan_from_the_form_names_the_wrong_field() -> None:
    from tui.screens.deploy_plan import DeployPlan

    good = {"endpoint": "churn-api", "deployment": "blue", "instance_type": "cpu-nano", "count": "2", "rows": ""}
    plan, problem = DeployPlan.from_form("online", "models:/churn/1", good)
    assert problem is None and plan is not None and plan.count == 2 and plan.batch_rows is None
    ep, dep = plan.specs(None)
    assert ep == {"name": "churn-api"}
    assert dep["instance_type"] == "cpu-nano" and dep["instance_count"] == 2 and dep["model"] == "models:/churn/1"
    assert DeployPlan.from_form("online", "m", {**good, "instance_type": "gpu-huge"})[1].startswith("type: unknown")
    assert DeployPlan.from_form("online", "m", {**good, "count": "0"})[1].startswith("instances:")
    assert DeployPlan.from_form("batch", "m", {**good, "rows": "-4"})[1].startswith("batch rows:")
    assert DeployPlan.from_form("online", "m", {**good, "endpoint": ""})[1].startswith("endpoint:")
    batch, _ = DeployPlan.from_form("batch", "models:/oj-sales/1", {**good, "rows": "4096"})
    _, bdep = batch.specs(None)
    assert bdep["resources"]["instance_count"] == 2 and bdep["mini_batch_rows"] == 4096


def test_examples_from_saved_example_or_signature() -> None:
    from tui.widgets.models_view import example_for, example_from_signature
    from tui.widgets.test_panel import find_version

    sig = {"inputs": [{"name": "age", "type": "long"}, {"name": "spend", "type": "double"},
                      {"name": "region", "type": "string"}]}
    assert example_from_signature(sig) == {"dataframe_split": {"columns": ["age", "spend", "region"],
                                                               "data": [[0, 0.0, ""]]}}
    assert example_from_signature({"inputs": [{"type": "tensor"}]}) is None
    assert example_for({"input_example": {"age": 3}}) == {"dataframe_records": [{"age": 3}]}
    assert example_for({"input_example": {"dataframe_split": {"columns": [], "data": []}}})["dataframe_split"]
    models = [{"name": "churn", "aliases": {"champion": "2"},
               "versions": [{"version": "1"}, {"version": "2", "signature": sig}]}]
    assert find_version(models, "models:/churn@champion")["version"] == "2"
    assert find_version(models, "models:/churn/1")["version"] == "1"
    assert find_version(models, "models:/other/1") is None and find_version(models, "runs:/x/model") is None


def test_every_palette_entry_runs_an_action_of_its_view() -> None:
    from tui.app import VIEWS
    from tui.commands import PALETTE
    from tui.widgets.endpoints_view import EndpointsView
    from tui.widgets.jobs_view import JobsView
    from tui.widgets.live_view import LiveView
    from tui.widgets.models_view import ModelsView
    from tui.widgets.test_panel import TestPanel

    classes = dict(zip(VIEWS, (ModelsView, EndpointsView, LiveView, JobsView, TestPanel)))
    names = [p[0] for p in PALETTE]
    for wanted in ("deploy", "traffic: edit", "job: cancel", "job: submit", "endpoint: delete", "test: send"):
        assert wanted in names
    for _, view, action, _ in PALETTE:
        assert callable(getattr(classes[view], f"action_{action}", None)), (view, action)


def test_palette_finds_and_runs_traffic_edit_on_fixed_data() -> None:
    """ctrl+p, type, enter: the traffic editor of the selected endpoint opens (no host needed)."""
    from tui.sample import sample_app
    from tui.screens.traffic import TrafficScreen

    async def main() -> None:
        app = sample_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+p")
            await pilot.pause(0.2)
            await pilot.press(*"traffic: edit")
            await until(pilot, lambda: "traffic: edit" in screen_text(app), "the palette entry")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, TrafficScreen), "the traffic editor")
            assert "Traffic of churn-api" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("ctrl+q")

    asyncio.run(main())


def test_fixed_data_views_switch_with_number_keys_and_focus_follows() -> None:
    from tui.sample import sample_app

    async def main() -> None:
        app = sample_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            for key, marker in (("2", "churn-shadow"), ("3", "ScaledUp"), ("4", "job-7f3a"), ("1", "@champion")):
                await pilot.press(key)
                await until(pilot, lambda: marker in screen_text(app), f"{marker} after {key}")
            await pilot.press("d")  # focus followed the tab: 'd' deploys from Models, not delete
            from tui.screens.deploy import DeployScreen
            await until(pilot, lambda: isinstance(app.screen, DeployScreen), "the deploy flow")

    asyncio.run(main())
