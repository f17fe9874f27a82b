"""Profiles are measured in a child process, honestly, once per model version.

The real measurement checked here is the session's one (conftest.advisor_measurement), which the
other advisor tests reuse."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from toolkit.advisor import advise, profile_model
from toolkit.advisor.profile import PROFILE_SIZES, profile_cache_path
from toolkit.errors import ModelError, NotFound, RequestTimeout


def test_profile_is_measured_once_and_reused(advisor_measurement):
    # The session's one real measurement of churn v1 (conftest.advisor_measurement), in its own home.
    home, measured = advisor_measurement
    first = measured["models:/churn@champion"]
    assert not first.from_cache and first.complete
    assert (first.name, first.version, first.model_uri) == ("churn", "1", "models:/churn/1")
    assert sorted(first.latency_ms) == list(PROFILE_SIZES) and all(v > 0 for v in first.latency_ms.values())
    assert first.load_s > 0 and first.import_s > 0 and first.rss_mib >= first.loaded_rss_mib > first.baseline_rss_mib
    assert first.rows_per_s(first.best_rows) > first.rows_per_s(1)  # batching pays off on a real sklearn model
    cache = profile_cache_path(home, "churn", "1")
    assert json.loads(cache.read_text())["key"] == first.key

    # The same version by another name (alias vs number) is the same profile: no second measurement.
    # (A cache hit only reads, so the shared home stays as it was.)
    again = profile_model(home, "models:/churn/1")
    assert again.from_cache and again.measured_at == first.measured_at and again.latency_ms == first.latency_ms
    advice = advise(home, model="models:/churn@champion", frequency="weekly", rows_per_run=100)
    assert advice.profile.from_cache and advice.profile.measured_at == first.measured_at
    assert "cached" in repr(advice)

    # A different version is a different profile (nothing measured for it yet).
    assert not cache.with_name("churn-2.json").exists()


def test_timeout_does_not_hang_the_caller(home):
    started = time.monotonic()
    with pytest.raises(RequestTimeout, match=r"timed out after 0.3 s"):
        profile_model(home, "models:/oj-sales/1", timeout_s=0.3)
    assert time.monotonic() - started < 30  # bounded by the timeout plus process clean-up, not the model
    assert not profile_cache_path(home, "oj-sales", "1").exists()


def test_a_model_that_cannot_load_is_a_model_error_not_a_crash(home, tmp_path: Path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: no_such_module_here\n")
    with pytest.raises(ModelError, match="profiling .* failed: .*no_such_module_here"):
        profile_model(home, str(broken), timeout_s=60)


def test_unknown_model_names_the_field(home):
    with pytest.raises(NotFound, match=r"^model: model 'churn' has no version '9'"):
        profile_model(home, "models:/churn/9")
