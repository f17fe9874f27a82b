"""The mission's scenarios, decided on real demo models profiled on this machine, and the Advice
object (repr, HTML, JSON, specs)."""

from __future__ import annotations

import json

import pytest

from toolkit.advisor import QUESTIONS, Advice, ModelProfile, Workload, advise
from toolkit.errors import InvalidSpec, NotFound
from toolkit.specs import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint


@pytest.fixture
def profiles(advisor_profiles: dict[str, ModelProfile]) -> dict[str, ModelProfile]:
    """Real profiles of the demo models, measured once per session (conftest.advisor_profiles)."""
    return advisor_profiles


CHURN, OJ = "models:/churn@champion", "models:/oj-sales@production"

# (scenario, model, workload, expected recommendation, deciding question)
SCENARIOS = [
    ("product recommendations shown while a shop page loads", CHURN,
     dict(frequency="per request", peak_rps=40, avg_rps=8, rows_per_request=20, latency="p99 200ms"), "online", "latency"),
    ("orange-juice sales forecast once a week for a report", OJ,
     dict(frequency="every 1 week", rows_per_run=120 * 4, deadline="12h"), "batch", "frequency"),
    ("temperature from IoT devices every minute, alerts needed at once", CHURN,
     dict(frequency="every minute", rows_per_run=2000, latency="p99 1s"), "online", "latency"),
    ("financial data extracted every three months", CHURN,
     dict(frequency="every 3 months", rows_per_run=250_000, deadline="3 days"), "batch", "frequency"),
    ("a table of customers scored for churn once a month", CHURN,
     dict(frequency="monthly", rows_per_run=100_000, deadline="24h"), "batch", "frequency"),
    ("a photo of a car classified when a user uploads it", CHURN,
     dict(frequency="on upload", peak_rps=3, avg_rps=0.2, rows_per_request=1, latency="p99 2s"), "online", "latency"),
]


@pytest.mark.parametrize("title, model, fields, expected, question", SCENARIOS, ids=[s[0][:40] for s in SCENARIOS])
def test_mission_scenarios(home, profiles, title, model, fields, expected, question):
    advice = advise(home, model=model, profile=profiles[model], **fields)
    assert (advice.recommendation, advice.deciding_question) == (expected, question), repr(advice)
    chosen = advice.recommended
    assert chosen.feasible and chosen.cost_per_month > 0
    # One reason per question, each in plain words; exactly one is marked as deciding, and it comes first.
    assert sorted(r.question for r in advice.reasons) == sorted(QUESTIONS)
    assert [r.question for r in advice.reasons if r.deciding] == [question] == [advice.reasons[0].question]
    assert advice.what_would_change, "every answer says what would change it"
    if expected == "online":
        assert chosen.latency_ms <= advice.workload.latency_ms
        assert not advice.options.batch.feasible and advice.options.batch.blocker == "latency"
        assert any("batch" in c.text for c in advice.what_would_change)
    else:
        assert chosen.expected_duration_s <= advice.workload.need_s
        assert chosen.cost_per_month < advice.options.online.cost_per_month  # paid only while running


def test_shop_page_what_if_names_a_wait_and_a_saving(home, profiles):
    advice = advise(home, model=CHURN, profile=profiles[CHURN], frequency="per request", peak_rps=40, avg_rps=8,
                    latency_ms=200)
    first = advice.what_would_change[0]
    assert first.recommendation == "batch" and first.text.startswith("If results may wait")
    assert "less" in first.text and first.cost_change_pct < 0


def test_request_too_big_for_online_is_decided_by_batch_size(home, profiles):
    advice = advise(home, model=CHURN, profile=profiles[CHURN], frequency="per request", avg_rps=0.001,
                    rows_per_request=2_000_000, deadline="6h")
    assert (advice.recommendation, advice.deciding_question) == ("batch", "batch_size")
    assert advice.options.online.blocker == "batch_size"


def test_one_event_an_hour_with_a_day_to_spare_is_decided_by_cost(home, profiles):
    advice = advise(home, model=CHURN, profile=profiles[CHURN], frequency="per request", avg_rps=1 / 3600,
                    deadline="1 day")
    assert (advice.recommendation, advice.deciding_question) == ("batch", "cost")


def test_advice_object_repr_html_json_and_round_trip(home, profiles):
    advice = advise(home, model=OJ, profile=profiles[OJ], frequency="weekly", rows_per_run=480, deadline="12h")
    text = repr(advice)
    assert "BATCH" in text and "[frequency]" in text and "What would change the answer" in text
    html = advice._repr_html_()
    assert "<table>" in html and "(recommended)" in html and "<b>[frequency]" in html
    data = json.loads(json.dumps(advice.to_dict()))
    assert data["recommendation"] == "batch" and data["deciding_question"] == "frequency"
    assert data["question"] == QUESTIONS["frequency"]
    assert {r["option"] for r in data["table"]} == {"online", "batch"}
    assert set(data["options"]) == {"online", "batch"}
    assert data["profile"]["latency_ms"]["4096"] > 0 and data["workload"]["frequency"] == "every week"
    again = Advice.from_dict(data)  # what the SDK rebuilds from the control plane's answer
    assert again.to_dict() == data and repr(again).splitlines()[0] == text.splitlines()[0]


def test_to_specs_of_each_option_are_valid_and_sized(home, profiles):
    advice = advise(home, model=CHURN, profile=profiles[CHURN], frequency="per request", peak_rps=40, avg_rps=8,
                    latency_ms=200)
    ep, dep = advice.to_specs()
    assert isinstance(ep, OnlineEndpoint) and isinstance(dep, OnlineDeployment)
    on = advice.options.online
    assert (ep.name, dep.name, dep.endpoint_name) == ("churn", "churn-v1", "churn")
    assert dep.model == "models:/churn/1"  # the version that was measured, not the alias
    assert (dep.instance_type, dep.instance_count, dep.batching.max_batch_size) == (
        on.instance_type, on.instance_count, on.max_batch_size)
    bep, bdep = advice.to_specs("batch", endpoint_name="churn-scoring")
    assert isinstance(bep, BatchEndpoint) and isinstance(bdep, BatchDeployment)
    assert bdep.endpoint_name == "churn-scoring" and bdep.resources.instance_count == advice.options.batch.workers
    assert bdep.mini_batch_rows == advice.options.batch.mini_batch_rows
    for spec in (ep, dep, bep, bdep):  # each survives its own YAML round trip
        assert type(spec).model_validate(spec.to_dict()) == spec
    with pytest.raises(InvalidSpec, match="option"):
        advice.to_specs("serverless")  # type: ignore[arg-type]


def test_workload_object_dict_and_yaml_are_the_same_question(home, profiles, tmp_path):
    w = Workload(model=OJ, frequency="weekly", rows_per_run=480, deadline="12h")
    f = tmp_path / "w.yml"
    f.write_text(w.to_yaml())
    answers = {advise(home, x, profile=profiles[OJ]).summary for x in (w, w.to_dict(), str(f))}
    assert len(answers) == 1


def test_unknown_model_and_invalid_workload_name_the_field(home):
    with pytest.raises(NotFound, match=r"^model: registered model 'nope' does not exist"):
        advise(home, model="models:/nope@champion", frequency="weekly", rows_per_run=10)
    with pytest.raises(NotFound, match=r"^model: model 'churn' has no alias 'gold'"):
        advise(home, model="models:/churn@gold", frequency="weekly", rows_per_run=10)
    with pytest.raises(InvalidSpec, match=r"^peak_rps: "):
        advise(home, model=CHURN, frequency="per request", peak_rps=-3, latency_ms=100)
    with pytest.raises(InvalidSpec, match=r"^rows_per_run: "):
        advise(home, model=CHURN, frequency="every 1 week", deadline="12h")
