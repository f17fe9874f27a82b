"""The fast tabular schema: a signature of named scalar columns compiled for cheap
per-request parsing and enforcement (see :mod:`toolkit.runtime.protocol` for the rules)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ...errors import InvalidInput

__all__ = ['TabularSchema', 'json_kind', 'mlflow_message']

_MAX_MESSAGE = 2000  # error messages from MLflow can embed the whole input; keep bodies bounded


# --- the fast tabular schema -----------------------------------------------------------------

_LABELS = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {json.dumps(v)}"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:40] + "..."
        return f"string {json.dumps(s)}"
    if isinstance(v, (int, float)):
        text = repr(v)
        return f"number {text}" if len(text) <= 40 else f"a number of {len(text)} digits"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str            # int | float | bool | str
    dtype: np.dtype[Any]
    mlflow_type: str     # the signature's type name, for messages
    required: bool

    def _bad(self, row: int, value: Any, why: str = "") -> InvalidInput:
        label = f"{_LABELS[self.kind]} ({self.mlflow_type})"
        msg = f"column {self.name!r} expects {label} values; row {row} has {json_kind(value)}"
        return InvalidInput(msg + (f" ({why})" if why else ""), details={"column": self.name, "row": row})

    def _scan(self, values: Sequence[Any]) -> InvalidInput:
        """Find the first offending value (slow; only runs on bad input)."""
        for i, v in enumerate(values):
            if self.kind == "int":
                if v is None:
                    return self._bad(i, v, "integer columns cannot hold missing values")
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    return self._bad(i, v)
                if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
                    return self._bad(i, v, "not a whole number")
                info = np.iinfo(self.dtype)
                if not info.min <= v <= info.max:
                    return self._bad(i, v, f"out of range for {self.dtype}")
            elif self.kind == "float":
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    return self._bad(i, v)
                if isinstance(v, int) and abs(v) >= 2 ** 1024:
                    return self._bad(i, v, f"out of range for {self.dtype}")
            elif self.kind == "bool":
                if v is not None and not isinstance(v, bool):
                    return self._bad(i, v)
            elif v is not None and not isinstance(v, str):
                return self._bad(i, v)
        return InvalidInput(f"column {self.name!r}: values cannot be read as {self.mlflow_type}",
                            details={"column": self.name})

    def convert(self, values: Sequence[Any]) -> np.ndarray:
        """JSON values of one column -> a numpy array typed as MLflow's enforcement leaves it."""
        kind = self.kind
        if kind == "str":
            for v in values:
                if v.__class__ is not str and v is not None:
                    raise self._scan(values)
            return np.array(values, dtype=object)
        try:
            arr = np.asarray(values)
        except (ValueError, OverflowError, TypeError):
            raise self._scan(values) from None
        if arr.ndim != 1:
            raise InvalidInput(f"column {self.name!r} expects one {self.mlflow_type} value per row, got nested lists",
                               details={"column": self.name})
        k = arr.dtype.kind
        if k in "iuf" and kind != "bool" and bool in set(map(type, values)):
            raise self._scan(values)  # numpy silently turns [true, 2] into [1, 2]
        if kind == "int":
            if k == "i" or (k == "u" and arr.size and arr.max() <= np.iinfo(self.dtype).max):
                if self.dtype.itemsize < arr.dtype.itemsize and arr.size:
                    info = np.iinfo(self.dtype)
                    if arr.min() < info.min or arr.max() > info.max:
                        raise self._scan(values)
                return arr.astype(self.dtype, copy=False)
            if k == "f" and np.isfinite(arr).all() and (arr == np.floor(arr)).all():
                if arr.size and (arr.min() < np.iinfo(self.dtype).min or arr.max() > np.iinfo(self.dtype).max):
                    raise self._scan(values)
                return arr.astype(self.dtype)
            if k == "f" and arr.size == 0:
                return arr.astype(self.dtype)
            raise self._scan(values)
        if kind == "float":
            if k in "iuf":
                return arr.astype(self.dtype, copy=False)
            if k == "O":  # None (null -> NaN, as in MLflow) mixed with numbers; anything else is not fine
                if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in values):
                    raise self._scan(values)
                try:
                    return np.array([math.nan if v is None else v for v in values], dtype=self.dtype)
                except OverflowError:  # an integer beyond any float
                    raise self._scan(values) from None
            raise self._scan(values)
        # bool
        if k == "b":
            return arr
        if k == "O" and all(v is None or isinstance(v, bool) for v in values):
            return np.array(values, dtype=object)  # MLflow keeps None in boolean columns as object
        raise self._scan(values)


_FAST_TYPES = {
    "long": ("int", np.dtype(np.int64)),
    "integer": ("int", np.dtype(np.int32)),
    "double": ("float", np.dtype(np.float64)),
    "float": ("float", np.dtype(np.float32)),
    "boolean": ("bool", np.dtype(np.bool_)),
    "string": ("str", np.dtype(object)),
}


class TabularSchema:
    """A model's input schema, compiled once for cheap per-request parsing and enforcement.

    ``fast`` is True when every input is a named scalar column of a supported type; otherwise
    the parsing falls back to MLflow's own functions with ``mlflow_schema``.
    """

    def __init__(self, mlflow_schema: Any | None, params_schema: Any | None = None) -> None:
        self.mlflow_schema = mlflow_schema
        self.params_schema = params_schema
        self.columns: list[_Column] = []
        self.fast = False
        if mlflow_schema is None or mlflow_schema.is_tensor_spec() or not mlflow_schema.has_input_names():
            return
        from mlflow.types import DataType

        cols = []
        for spec in mlflow_schema.inputs:
            t = spec.type
            if not isinstance(t, DataType) or t.name not in _FAST_TYPES:
                return
            kind, dtype = _FAST_TYPES[t.name]
            cols.append(_Column(spec.name, kind, dtype, t.name, bool(spec.required)))
        self.columns = cols
        self.names = [c.name for c in cols]
        self.by_name = {c.name: c for c in cols}
        self.fast = bool(cols)

    @classmethod
    def from_signature(cls, signature: Any | None) -> "TabularSchema":
        if signature is None:
            return cls(None)
        return cls(signature.inputs, getattr(signature, "params", None))

    # -- building columns from JSON shapes --------------------------------------------------
    def _missing(self, present: Callable[[str], bool]) -> None:
        for c in self.columns:
            if c.required and not present(c.name):
                raise InvalidInput(
                    f"missing required column {c.name!r}; the model signature expects columns {self.names}",
                    details={"column": c.name},
                )

    def from_columns(self, mapping: dict[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        """``{"col": [values]}`` (or ``{"col": scalar}`` for one row)."""
        self._missing(mapping.__contains__)
        lists = {}
        n = None
        for c in self.columns:
            if c.name not in mapping:
                continue
            v = mapping[c.name]
            if isinstance(v, list):
                if n is not None and len(v) != n:
                    raise InvalidInput(f"column {c.name!r} has {len(v)} values but other columns have {n}",
                                       details={"column": c.name})
                n = len(v)
            lists[c.name] = v
        if n is None:
            n = 1
        out = {}
        for name, v in lists.items():
            out[name] = self.by_name[name].convert(v if isinstance(v, list) else [v] * n)
        return out, n

    def from_rows(self, rows: list[Any], names: list[Any] | None) -> tuple[dict[str, np.ndarray], int]:
        """A list of rows (lists) with column ``names``, or in signature order when names is None."""
        if names is None:
            names = self.names
            width = len(names)
            if any(not isinstance(r, list) or len(r) != width for r in rows):
                if len(self.columns) == 1 and all(not isinstance(r, (list, dict)) for r in rows):
                    return self.from_columns({names[0]: rows})
                raise InvalidInput(
                    f"rows without column names must each hold {width} values in the signature's column "
                    f"order {names}; send column names (e.g. dataframe_split with 'columns') otherwise"
                )
        else:
            width = len(names)
            for i, r in enumerate(rows):
                if not isinstance(r, list):
                    if width == 1 and not isinstance(r, dict):
                        continue
                    raise InvalidInput(f"row {i} must be a list of {width} values, got {json_kind(r)}", details={"row": i})
                if len(r) != width:
                    raise InvalidInput(f"row {i} has {len(r)} values but there are {width} columns", details={"row": i})
            if width == 1 and rows and not isinstance(rows[0], list):
                rows = [r if isinstance(r, list) else [r] for r in rows]
        position = {n: i for i, n in enumerate(names)}
        self._missing(position.__contains__)
        n = len(rows)
        out = {}
        if n == 1:
            row = rows[0]
            for c in self.columns:
                if c.name in position:
                    out[c.name] = c.convert([row[position[c.name]]])
        else:
            transposed = list(zip(*rows)) if n else [()] * width
            for c in self.columns:
                if c.name in position:
                    out[c.name] = c.convert(transposed[position[c.name]])
        return out, n

    def from_records(self, records: list[Any]) -> tuple[dict[str, np.ndarray], int]:
        """A list of ``{"col": value}`` objects; a key absent from some records is null there."""
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise InvalidInput(f"record {i} must be an object of column values, got {json_kind(r)}", details={"row": i})
        if len(records) == 1:
            return self.from_columns({k: [v] for k, v in records[0].items()})
        seen: set[str] = set()
        for r in records:
            seen.update(r)
        self._missing(seen.__contains__)
        out = {}
        for c in self.columns:
            if c.name in seen:
                out[c.name] = c.convert([r.get(c.name) for r in records])
        return out, len(records)

    # -- DataFrames (CSV, Parquet, in-process callers) --------------------------------------
    def enforce_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """MLflow's own enforcement of a DataFrame, with its errors as :class:`InvalidInput`."""
        if self.mlflow_schema is None:
            return df
        from mlflow.models.utils import _enforce_schema

        try:
            return _enforce_schema(df, self.mlflow_schema)
        except Exception as err:
            raise InvalidInput(mlflow_message(err)) from None

    def enforce_params(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        from mlflow.models.utils import _enforce_params_schema

        try:
            return _enforce_params_schema(params, self.params_schema)
        except Exception as err:
            raise InvalidInput(f"params: {mlflow_message(err)}") from None


def mlflow_message(err: BaseException) -> str:
    msg = getattr(err, "message", None) or str(err)
    msg = msg.removeprefix("Invalid input. ")
    return msg if len(msg) <= _MAX_MESSAGE else msg[:_MAX_MESSAGE] + "..."

