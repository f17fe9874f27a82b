"""Specs from files and dicts: YAML/JSON reading, ``--set`` overrides, validation messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Type, TypeVar

import yaml
from pydantic import ValidationError

from ..errors import InvalidSpec
from .common import Spec
from .resources import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint

__all__ = ["KINDS", "load_spec", "read_spec_file", "parse_spec", "apply_overrides", "format_validation_error",
           "format_errors"]


# --- loading ----------------------------------------------------------------------------------

S = TypeVar("S", bound=Spec)
KINDS: dict[str, Type[Spec]] = {
    "online-endpoint": OnlineEndpoint,
    "online-deployment": OnlineDeployment,
    "batch-endpoint": BatchEndpoint,
    "batch-deployment": BatchDeployment,
}


def format_errors(errors: list[Any], source: str | None = None) -> str:
    """One line per pydantic error: ``source: field: reason`` (locations given without the part
    FastAPI prepends, such as ``body``)."""
    lines = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (not part of the spec)"
        elif e.get("type") in ("int_type", "float_type") and isinstance(e.get("input"), bool):
            kind = "a whole number" if e["type"] == "int_type" else "a number"
            msg = f"must be {kind}, not the boolean {str(e['input']).lower()}"
        # Rules spanning fields name their field at the start of the message themselves.
        where = f"{loc}: " if loc else ""
        lines.append(f"{source + ': ' if source else ''}{where}{msg}")
    return "\n".join(lines)


def format_validation_error(err: ValidationError, source: str | None = None) -> str:
    """One line per problem: ``file: field: reason``."""
    return format_errors(list(err.errors()), source)


def _fields_of(err: ValidationError) -> list[str]:
    fields = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if not loc:
            loc = e["msg"].removeprefix("Value error, ").split(":", 1)[0]
        fields.append(loc)
    return fields


def parse_spec(cls: Type[S], data: Any, source: str | None = None) -> S:
    """Validate ``data`` as ``cls``; raise :class:`InvalidSpec` naming the field and rule."""
    if not isinstance(data, dict):
        where = f"{source}: " if source else ""
        raise InvalidSpec(f"{where}a {cls.__name__} spec must be a mapping of fields, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise InvalidSpec(format_validation_error(err, source), details={"fields": _fields_of(err)}) from None


def _coerce(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``--set a.b=value`` overrides (values parsed as YAML scalars)."""
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidSpec(f"--set {item!r}: expected key=value")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InvalidSpec(f"--set {item!r}: {p} is not a mapping")
        node[parts[-1]] = _coerce(raw)
    return data


MAX_SPEC_BYTES = 4 * 1024 * 1024


def read_spec_file(path: str | Path) -> Any:
    """The YAML document in ``path``; an unreadable, binary or malformed file is an
    :class:`InvalidSpec` naming the file and saying what is wrong (never a traceback)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            # Bounded: `-f /dev/zero` or a multi-gigabyte file must not hang or exhaust memory.
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise InvalidSpec(f"{p}: file not found") from None
    except IsADirectoryError:
        raise InvalidSpec(f"{p}: is a folder; give the path of a YAML spec file") from None
    except OSError as err:
        raise InvalidSpec(f"{p}: cannot read ({err.strerror or err})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise InvalidSpec(f"{p}: larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB; a spec is a small YAML text file")
    if b"\0" in raw:
        raise InvalidSpec(f"{p}: is a binary file, not a YAML spec (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidSpec(f"{p}: is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                          "a spec is a YAML text file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InvalidSpec(f"{p}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise InvalidSpec(f"{p}: not valid YAML: nested too deeply") from None


def load_spec(cls: Type[S], path: str | Path, overrides: list[str] | None = None) -> S:
    """Read a YAML spec file; errors name the file, the field and the reason."""
    p = Path(path)
    data = read_spec_file(p)
    if data is None:
        data = {}
    if isinstance(data, dict):
        data.pop("$schema", None)
        data = apply_overrides(data, overrides)
    spec = parse_spec(cls, data, source=str(p))
    # A relative code folder is relative to the YAML file, as in Azure's CLI.
    cc = getattr(spec, "code_configuration", None)
    if cc is not None and not Path(cc.code).is_absolute():
        cc.code = str((p.parent / cc.code).resolve())
    model = getattr(spec, "model", None)
    if model and ":/" not in model and not Path(model).is_absolute() and (p.parent / model).exists():
        spec.model = str((p.parent / model).resolve())
    return spec
