"""The advisor: online endpoint or batch jobs for a model, decided by the mission's four
questions (how often, how soon, one at a time or in batches, what it costs), with numbers
measured on the user's own model on this machine.

    from toolkit.advisor import advise
    advice = advise(home, model="models:/churn@champion", frequency="per request",
                    peak_rps=50, avg_rps=10, latency_ms=200)
    advice.recommendation        # 'online'
    advice.to_specs()            # [OnlineEndpoint, OnlineDeployment], sized

Headless: the SDK (``ws.advise``), the CLI (``endpoints advise``), the control plane
(``POST /advise``), the notebook wizard and the TUI all call :func:`advise`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InvalidSpec
from ..home import Home
from ..registry import Registry
from .advice import Advice, Options, summary_of
from .decision import QUESTIONS, Change, Evaluation, Reason, evaluate, what_would_change
from .profile import PROFILE_SIZES, ModelProfile, profile_model
from .sizing import Assumptions, BatchOption, OnlineOption
from .workload import DEFAULT_PRICES, Frequency, Prices, Workload, load_workload, parse_workload

__all__ = [
    "advise",
    "Advice",
    "Workload",
    "Frequency",
    "Prices",
    "DEFAULT_PRICES",
    "ModelProfile",
    "profile_model",
    "PROFILE_SIZES",
    "Assumptions",
    "OnlineOption",
    "BatchOption",
    "Options",
    "Reason",
    "Change",
    "Evaluation",
    "QUESTIONS",
    "evaluate",
    "what_would_change",
    "load_workload",
    "parse_workload",
]


def _registry(where: Home | Registry | str | os.PathLike[str] | None) -> Registry:
    if isinstance(where, Registry):
        return where
    if isinstance(where, Home):
        return Registry(where)
    if where is not None and hasattr(where, "home") and isinstance(getattr(where, "home"), Home):
        return Registry(where.home)  # a Workspace-like object
    return Registry(Home.resolve(where))


def advise(
    where: Home | Registry | str | os.PathLike[str] | None = None,
    workload: Workload | dict[str, Any] | str | os.PathLike[str] | None = None,
    *,
    profile: ModelProfile | None = None,
    assumptions: Assumptions | dict[str, Any] | None = None,
    timeout_s: float = 90.0,
    refresh: bool = False,
    **fields: Any,
) -> Advice:
    """Recommend online or batch for ``workload`` (a :class:`Workload`, a dict, a YAML path, or
    workload fields as keywords) in the workspace ``where`` (a Home, a Registry, a home path, or
    None for ``$ENDPOINTS_HOME`` / ``./mlruns``).

    The model is profiled in a child process (at most ``timeout_s``; cached per version, so the
    next call is instant; ``refresh`` measures again).  Pass ``profile`` to reuse one you have.
    Errors: :class:`InvalidSpec` naming the workload field, :class:`NotFound` for an unknown model
    ("model: ..."), :class:`RequestTimeout` / :class:`ModelError` when the model cannot be profiled.
    """
    if isinstance(workload, (str, os.PathLike)):
        spec = load_workload(Path(workload))
        if fields:
            spec = parse_workload({**spec.model_dump(mode="json", exclude_unset=True), **fields})
    elif isinstance(workload, Workload):
        spec = workload if not fields else workload.with_changes(**fields)
    elif workload is None or isinstance(workload, dict):
        spec = parse_workload({**(workload or {}), **fields})
    else:
        raise InvalidSpec(f"workload: expected a Workload, a mapping or a YAML path, got {type(workload).__name__}")
    a = assumptions if isinstance(assumptions, Assumptions) else Assumptions.model_validate(assumptions or {})

    if profile is None:
        profile = profile_model(_registry(where), spec.model, timeout_s=timeout_s, refresh=refresh)
    current = evaluate(profile, spec, a)
    changes = what_would_change(profile, spec, current, a)
    return Advice(
        model=spec.model, model_uri=profile.model_uri, recommendation=current.recommendation,
        deciding_question=current.deciding_question,
        summary=summary_of(current.recommendation, current.deciding_question, current.chosen, spec),
        reasons=current.reasons, options=Options(online=current.online, batch=current.batch),
        what_would_change=changes, warnings=current.warnings, workload=spec, profile=profile, assumptions=a,
    )
