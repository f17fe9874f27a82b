"""The workload spec: friendly constructors, YAML, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.advisor import Prices, Workload, load_workload, parse_workload
from toolkit.advisor.workload import HOURS_PER_MONTH, format_duration, parse_duration, parse_frequency
from toolkit.errors import InvalidSpec

M = "models:/churn@champion"


@pytest.mark.parametrize("text, kind, period_s", [
    ("per request", "on_arrival", None),
    ("on arrival", "on_arrival", None),
    ("as each event arrives", "on_arrival", None),
    ("every minute", "scheduled", 60.0),
    ("every 15 min", "scheduled", 900.0),
    ("hourly", "scheduled", 3600.0),
    ("twice a day", "scheduled", 43200.0),
    ("every 1 week", "scheduled", 7 * 86400.0),
    ("weekly", "scheduled", 7 * 86400.0),
    ("monthly", "scheduled", HOURS_PER_MONTH * 3600),
    ("every 3 months", "scheduled", 3 * HOURS_PER_MONTH * 3600),
    ("quarterly", "scheduled", 3 * HOURS_PER_MONTH * 3600),
])
def test_frequency_strings(text, kind, period_s):
    f = parse_frequency(text)
    assert f.kind == kind
    assert f.period_s == (pytest.approx(period_s) if period_s else None)
    assert parse_frequency(str(f)) == f  # what we print parses back to the same thing


@pytest.mark.parametrize("text, seconds", [
    ("12h", 43200), ("within 12 hours", 43200), ("30 min", 1800), ("2 days", 172800), (90, 90), ("an hour", 3600),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert format_duration(seconds)


def test_friendly_keywords_normalise_and_round_trip_through_yaml(tmp_path: Path):
    w = Workload(model=M, frequency="every 1 week", deadline="12h", rows_per_run=5000,
                 prices={"core_hour": 0.05})
    assert w.deadline_s == 43200 and w.need_s == 43200 and w.frequency.runs_per_month == pytest.approx(730 / 168)
    assert w.prices.gib_hour == Prices().gib_hour  # unset prices keep their documented defaults
    f = tmp_path / "workload.yml"
    f.write_text(w.to_yaml())
    assert load_workload(f) == w

    online = Workload(model=M, frequency="per request", latency="p95 250ms", peak_rps=40)
    assert (online.latency_ms, online.latency_percentile, online.average) == (250, 95, 40)


def test_yaml_with_overrides(tmp_path: Path):
    f = tmp_path / "w.yml"
    f.write_text("model: models:/oj-sales@production\nfrequency: weekly\nrows_per_run: 120\ndeadline: 12h\n")
    w = load_workload(f, overrides=["rows_per_run=240", "prices.core_hour=0.1"])
    assert w.rows_per_run == 240 and w.prices.core_hour == 0.1


@pytest.mark.parametrize("data, field, words", [
    ({"frequency": "per request", "peak_rps": -1, "latency_ms": 100}, "peak_rps", "greater than or equal to 0"),
    ({"frequency": "per request", "avg_rps": -0.5, "latency_ms": 100}, "avg_rps", "greater than or equal to 0"),
    ({"frequency": "every 1 week", "deadline": "12h"}, "rows_per_run", "needs rows_per_run"),
    ({"frequency": "per request", "latency_ms": 100}, "peak_rps", "arrival rate"),
    ({"frequency": "per request", "peak_rps": 5}, "latency_ms", "how soon"),
    ({"frequency": "per request", "peak_rps": 5, "avg_rps": 9, "latency_ms": 100}, "avg_rps", "cannot exceed"),
    ({"frequency": "sometimes", "rows_per_run": 5}, "frequency", "not a frequency"),
    ({"frequency": "weekly", "rows_per_run": 5, "deadline": "soon"}, "deadline", "not a duration"),
    ({"frequency": "weekly", "rows_per_run": 0}, "rows_per_run", "greater than or equal to 1"),
    ({"frequency": "weekly", "rows_per_run": 5, "hours_per_day": 30}, "hours_per_day", "less than or equal to 24"),
    ({"frequency": "weekly", "rows_per_run": 5, "colour": "blue"}, "colour", "unknown field"),
    ({"frequency": "weekly", "rows_per_run": 5, "model": "churn:/1"}, "model", "must be models:/"),
])
def test_invalid_workloads_name_the_field(data, field, words):
    with pytest.raises(InvalidSpec) as err:
        parse_workload({"model": M, **data})
    assert str(err.value).startswith(f"{field}: ") and words in str(err.value)
    assert err.value.details["fields"] == [field]
    assert err.value.status_code == 400


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(InvalidSpec, match="file not found"):
        load_workload(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(InvalidSpec, match="not valid YAML"):
        load_workload(bad)
