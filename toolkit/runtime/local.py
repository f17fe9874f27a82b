"""Local endpoints (Azure's ``--local``): score a deployment spec in-process, creating nothing.

The model is resolved through the registry, loaded in this process (kept in a small cache, so a
notebook can call this in a loop), and the body goes through the same parsing, prediction and
error mapping as a served instance; only the micro-batcher and the request timeout are absent.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import PayloadTooLarge, ToolkitError
from ..specs import OnlineDeployment
from .scorer import Scorer

__all__ = ["score_locally", "load_local_scorer", "clear_cache"]

_CACHE: dict[tuple[Any, ...], Scorer] = {}
_CACHE_SIZE = 4


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """The deployment's environment_variables, for the duration of a load or a prediction."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_local_scorer(spec: OnlineDeployment, registry: Any) -> Scorer:
    """The deployment's model (and scoring script) loaded in this process; cached by content."""
    resolved = registry.resolve(spec.model)
    cc = spec.code_configuration
    script = cc.script_path() if cc else None
    # The script's mtime is part of the key: editing the script and scoring again reloads it.
    key = (resolved.uri, str(script) if script else None, script.stat().st_mtime if script and script.exists() else None)
    scorer = _CACHE.get(key)
    if scorer is None:
        with _environment(spec.environment_variables):
            scorer = Scorer.load(
                resolved.local_path, code=cc.code if cc else None, scoring_script=cc.scoring_script if cc else None,
                name=spec.endpoint_name, version=resolved.version or spec.name,
            )
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = scorer
    return scorer


def clear_cache() -> None:
    _CACHE.clear()


def score_locally(spec: OnlineDeployment, body: bytes, content_type: str, registry: Any) -> tuple[int, dict[str, Any]]:
    """Score ``body`` as the deployment would; returns (HTTP status, JSON body) and never raises
    a :class:`ToolkitError` (it becomes the status and error body the server would answer)."""
    try:
        limit = spec.request_settings.max_body_bytes
        if len(body) > limit:
            raise PayloadTooLarge(f"the body has {len(body)} bytes; this deployment accepts at most {limit} (max_body_bytes)")
        scorer = load_local_scorer(spec, registry)
        with _environment(spec.environment_variables):
            inp = scorer.parse(body, content_type)
            preds = scorer.predict(inp)
        return 200, json.loads(scorer.body(preds))
    except ToolkitError as err:
        return err.status_code, err.to_body()

