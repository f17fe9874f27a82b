"""What the SDK's operation groups accept: a spec in any of its forms, changes to an existing
resource, and scoring data; plus the create-must-not-overwrite check they share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .entities import Entity
from .errors import Conflict, InvalidInput, InvalidSpec, NotFound
from .specs import Spec, apply_overrides, load_spec, parse_spec

__all__ = ["encode_request"]


def _spec(cls: type[Spec], spec: Any) -> Any:
    if isinstance(spec, cls):
        return spec
    if isinstance(spec, (str, Path)):
        return load_spec(cls, spec)
    if isinstance(spec, dict):
        return parse_spec(cls, spec)
    raise InvalidSpec(f"expected a {cls.__name__}, a dict or a YAML path, got {type(spec).__name__}")


def _refuse_existing(get: Callable[[], Any], what: str) -> None:
    """``create`` never replaces: Conflict when ``get`` finds the resource already there."""
    try:
        get()
    except NotFound:
        return
    raise Conflict(f"{what} already exists; use `update` to change it")


def _patched(cls: type[Spec], current: Entity, changes: dict[str, Any], overrides: list[str] | None) -> Any:
    """The spec of an existing resource with some fields changed (keywords, then ``KEY=VALUE``
    overrides), validated as a whole so a bad value is named like in a YAML spec."""
    fields = set(cls.model_fields)
    data = {k: v for k, v in current.to_dict().items() if k in fields}
    return parse_spec(cls, apply_overrides({**data, **changes}, list(overrides or [])))


def _nothing_to_update(changes: dict[str, Any], overrides: list[str] | None, *extra: Any) -> None:
    if not changes and not overrides and all(x is None for x in extra):
        raise InvalidSpec("nothing to update: pass the fields to change as keywords, or set=[\"KEY=VALUE\"]")


def encode_request(data: Any, content_type: str | None = None) -> tuple[bytes, str]:
    """Body and content type for a scoring request from a DataFrame, dict, list, path or bytes."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None  # type: ignore[assignment]
    if pd is not None and isinstance(data, pd.DataFrame):
        split = json.loads(data.to_json(orient="split", index=False, date_format="iso"))
        return json.dumps({"dataframe_split": split}).encode(), "application/json"
    if isinstance(data, (dict, list)):
        return json.dumps(data).encode(), content_type or "application/json"
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), content_type or "application/json"
    if isinstance(data, (str, Path)):
        p = Path(data)
        if not p.is_file():
            raise InvalidInput(f"request file {str(p)!r} does not exist")
        suffix = p.suffix.lower()
        guessed = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet"}.get(suffix, "application/json")
        return p.read_bytes(), content_type or guessed
    raise InvalidInput(f"cannot send {type(data).__name__} as a scoring request; pass a DataFrame, dict, path or bytes")
