"""The scoring wire protocol: request bodies in, model input out; predictions in, JSON out.

Accepted bodies (``POST /score``), as ``mlflow models serve`` accepts them, plus Azure's wrapper:

* ``application/json`` with exactly one of ``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs`` and an optional ``params`` object;
* ``application/json`` with Azure's ``{"input_data": ..., "params": ...}``, where ``input_data``
  holds split orient (``{"columns", "index"?, "data"}``), records (a list of objects), rows (a
  list of lists, in signature column order) or columns (``{"col": [values]}``);
* ``text/csv`` (a header row naming the columns);
* ``application/vnd.apache.parquet`` (also ``application/parquet``, ``application/x-parquet``,
  and ``application/octet-stream`` when the body starts with the Parquet magic ``PAR1``).

A missing ``Content-Type`` is read as JSON (what ``curl -d`` users mean); any other type is
:class:`UnsupportedMediaType`.  Only UTF-8 is accepted, as in MLflow.

The Open Inference (V2) request/response lives in :mod:`.v2`, on top of this module.

Schema enforcement.  For the common case, a signature of named scalar columns (long, integer,
double, float, boolean, string), JSON bodies are turned straight into one typed numpy array per
column (:class:`TabularSchema`), skipping pandas' JSON round trip and MLflow's ``_enforce_schema``.
The resulting DataFrame equals what MLflow's parse + enforce produce (tested), with stricter
and clearer errors that always name the column:

* a missing required column, a string in a numeric column, a number in a string column, a null
  in an integer column, a non-integral number in an integer column (MLflow's server would
  silently truncate 2.5 to 2), a boolean in a numeric column: :class:`InvalidInput`;
* extra columns are ignored (MLflow warns and ignores them too);
* JSON rows without column names (``instances``/``inputs``/``input_data`` as a list of lists, or
  ``dataframe_split`` without ``columns``) are read in signature column order when their length
  matches; MLflow rejects those, so this only accepts more.

Every other signature (tensors, arrays, objects, datetimes, no signature) goes through MLflow's
own parsing functions, so its behaviour is MLflow's by construction; CSV and Parquet are read as
MLflow reads them and then enforced with MLflow's ``_enforce_schema``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from io import BytesIO, StringIO
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import InvalidInput, UnsupportedMediaType

__all__ = [
    "FORMAT_KEYS",
    "JSON_TYPES",
    "CSV_TYPES",
    "PARQUET_TYPES",
    "ParsedInput",
    "TabularSchema",
    "parse_request",
    "decode_json",
    "media_type",
    "combine_inputs",
    "split_predictions",
    "jsonable",
    "dumps",
    "predictions_body",
    "frame_input",
    "row_count",
]

FORMAT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
AZURE_KEY = "input_data"
JSON_TYPES = frozenset({"application/json", "text/json"})
CSV_TYPES = frozenset({"text/csv", "application/csv"})
PARQUET_TYPES = frozenset({"application/vnd.apache.parquet", "application/parquet", "application/x-parquet"})
_MAX_MESSAGE = 2000  # error messages from MLflow can embed the whole input; keep bodies bounded


# --- parsed input ----------------------------------------------------------------------------


@dataclass
class ParsedInput:
    """A request body turned into model input.

    ``columns`` is set by the fast path (typed arrays in signature order, the frame is built
    lazily, so a micro-batch concatenates arrays and builds one frame); ``data`` otherwise.
    ``enforced`` means the data already satisfies the signature exactly as MLflow's
    ``_enforce_schema`` would leave it, so a flavor-level predict may skip enforcement.
    ``raw`` marks decoded JSON that is not one of the MLflow formats (only for scoring scripts).
    """

    data: Any = None
    params: dict[str, Any] | None = None
    rows: int = 1
    columns: dict[str, np.ndarray] | None = None
    index: list[Any] | None = None
    enforced: bool = False
    raw: bool = False
    fmt: str = ""
    request_id: str | None = None  # V2 only
    v2: Any = None                 # V2 only: the outputs asked for (:class:`.v2.OutputRequest`)
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def frame(self) -> Any:
        """The model input (a DataFrame on the fast path)."""
        if self.columns is None:
            return self.data
        if self._frame is None:
            self._frame = pd.DataFrame(self.columns, index=self.index)
        return self._frame

    @property
    def batch_key(self) -> tuple[Any, ...] | None:
        """Requests with equal keys may share one predict call; None never batches."""
        if self.columns is None:
            return None
        params = json.dumps(self.params, sort_keys=True, default=str) if self.params else ""
        return (tuple(self.columns), tuple(a.dtype.str for a in self.columns.values()), params)


def combine_inputs(items: Sequence[ParsedInput]) -> ParsedInput:
    """One input holding the rows of ``items`` (same batch key) in order."""
    first = items[0]
    assert first.columns is not None
    names = list(first.columns)
    cols = {n: np.concatenate([it.columns[n] for it in items]) for n in names}  # type: ignore[index]
    return ParsedInput(columns=cols, params=first.params, rows=sum(it.rows for it in items), enforced=first.enforced)


# --- the fast tabular schema -----------------------------------------------------------------

_LABELS = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def _json_kind(v: Any) -> str:
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
        msg = f"column {self.name!r} expects {label} values; row {row} has {_json_kind(value)}"
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
                    raise InvalidInput(f"row {i} must be a list of {width} values, got {_json_kind(r)}", details={"row": i})
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
                raise InvalidInput(f"record {i} must be an object of column values, got {_json_kind(r)}", details={"row": i})
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
            raise InvalidInput(_mlflow_message(err)) from None

    def enforce_params(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        from mlflow.models.utils import _enforce_params_schema

        try:
            return _enforce_params_schema(params, self.params_schema)
        except Exception as err:
            raise InvalidInput(f"params: {_mlflow_message(err)}") from None


def _mlflow_message(err: BaseException) -> str:
    msg = getattr(err, "message", None) or str(err)
    msg = msg.removeprefix("Invalid input. ")
    return msg if len(msg) <= _MAX_MESSAGE else msg[:_MAX_MESSAGE] + "..."


# --- content types and JSON ------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """The lower-cased media type; checks parameters as MLflow does (only charset=utf-8)."""
    if not content_type:
        return "application/json"
    parts = [p.strip() for p in content_type.split(";")]
    mime = parts[0].lower()
    for p in parts[1:]:
        if not p:
            continue
        key, _, value = p.partition("=")
        key = key.strip().lower()
        value = value.strip().strip('"').lower()
        if key == "charset":
            if value not in ("utf-8", "utf8"):
                raise UnsupportedMediaType(f"only UTF-8 is supported, got charset={value}")
        else:
            raise UnsupportedMediaType(f"unrecognized content type parameter {key!r} in {content_type!r}")
    return mime


def decode_json(body: bytes | str) -> Any:
    """json.loads with an error naming the position."""
    if not body:
        raise InvalidInput("the request body is empty; send a JSON object such as {\"dataframe_split\": ...}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise InvalidInput(
            f"the request body is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno} (char {err.pos})",
            details={"line": err.lineno, "column_number": err.colno, "position": err.pos},
        ) from None
    except UnicodeDecodeError as err:
        raise InvalidInput(f"the request body is not valid UTF-8: {err.reason} at byte {err.start}") from None
    except RecursionError:
        raise InvalidInput(
            "the request body nests lists or objects too deeply to read; a scoring request needs at most a few levels"
        ) from None
    except ValueError as err:  # Python refuses integers of more than 4300 digits (int_max_str_digits)
        digits = str(err).partition("value has ")[2].partition(" digits")[0]
        raise InvalidInput(
            f"the request body holds an integer of {digits or 'too many'} digits; no model column can hold it"
        ) from None


_ACCEPTED = (
    "send a JSON object with exactly one of 'dataframe_split', 'dataframe_records', 'instances', "
    "'inputs' (MLflow) or 'input_data' (Azure ML), and optionally 'params'"
)


def parse_request(body: bytes, content_type: str | None, schema: TabularSchema, *, allow_raw: bool = False) -> ParsedInput:
    """Parse a ``/score`` body into model input (see the module docstring for the rules).

    ``allow_raw`` (scoring scripts) returns decoded JSON that is not an MLflow format as is.
    """
    mime = media_type(content_type)
    if mime in JSON_TYPES or mime.endswith("+json"):
        return _parse_json(decode_json(body), schema, allow_raw)
    if mime in CSV_TYPES:
        return _parse_csv(body, schema)
    if mime in PARQUET_TYPES or (mime == "application/octet-stream" and body[:4] == b"PAR1"):
        return _parse_parquet(body, schema)
    raise UnsupportedMediaType(
        f"unsupported content type {content_type!r}; use application/json, text/csv or application/vnd.apache.parquet"
    )


def _check_params(doc: dict[str, Any]) -> dict[str, Any] | None:
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"'params' must be an object, got {_json_kind(params)}", details={"field": "params"})
    return params


def _parse_json(doc: Any, schema: TabularSchema, allow_raw: bool) -> ParsedInput:
    if not isinstance(doc, dict):
        if allow_raw:
            return ParsedInput(data=doc, raw=True, fmt="raw")
        raise InvalidInput(f"{_ACCEPTED}; got {_json_kind(doc)}")
    keys = [k for k in FORMAT_KEYS if k in doc]
    if AZURE_KEY in doc:
        keys.append(AZURE_KEY)
    if len(keys) != 1:
        if not keys and allow_raw:
            return ParsedInput(data=doc, raw=True, fmt="raw")
        got = f"got both {keys}" if keys else f"got keys {sorted(doc)[:10]}"
        raise InvalidInput(f"{_ACCEPTED}; {got}")
    fmt = keys[0]
    params = _check_params(doc)
    value = doc[fmt]
    if params is not None:
        if schema.params_schema is not None:
            params = schema.enforce_params(params)
        elif not allow_raw:
            # Without a params schema MLflow ignores params (with a warning per request); so do we,
            # silently, and they then do not keep requests from sharing a batch.
            params = None
    if schema.fast:
        cols, rows, index = _fast_columns(fmt, value, schema)
        if rows == 0:
            raise InvalidInput(f"{fmt} holds no rows; send at least one row to score", details={"field": fmt})
        return ParsedInput(columns=cols, rows=rows, index=index, params=params, enforced=True, fmt=fmt)
    return _mlflow_parse(fmt, value, schema, params)


def _fast_columns(fmt: str, value: Any, schema: TabularSchema) -> tuple[dict[str, np.ndarray], int, list[Any] | None]:
    index = None
    if isinstance(value, list) and not value:
        raise InvalidInput(f"{fmt} holds no rows; send at least one row to score", details={"field": fmt})
    if fmt == "dataframe_split" or (fmt == AZURE_KEY and isinstance(value, dict) and "data" in value):
        if not isinstance(value, dict):
            raise InvalidInput(f"{fmt} must be an object with 'columns' and 'data' (pandas split orient), got {_json_kind(value)}",
                               details={"field": fmt})
        extra = set(value) - {"columns", "data", "index"}
        if extra:
            raise InvalidInput(f"{fmt} may only hold 'columns', 'data' and 'index'; got also {sorted(extra)}", details={"field": fmt})
        data, names, index = value.get("data"), value.get("columns"), value.get("index")
        if not isinstance(data, list):
            raise InvalidInput(f"{fmt}.data must be a list of rows, got {_json_kind(data)}", details={"field": f"{fmt}.data"})
        if names is not None and not isinstance(names, list):
            raise InvalidInput(f"{fmt}.columns must be a list of column names", details={"field": f"{fmt}.columns"})
        cols, n = schema.from_rows(data, names)
        if index is not None and (not isinstance(index, list) or len(index) != n):
            raise InvalidInput(f"{fmt}.index must be a list with one label per row ({n})", details={"field": f"{fmt}.index"})
        return cols, n, index
    if fmt == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidInput(f"dataframe_records must be a list of records, got {_json_kind(value)}", details={"field": fmt})
        cols, n = schema.from_records(value)
        return cols, n, None
    # instances, inputs, input_data: records, rows, or columns
    if isinstance(value, dict):
        cols, n = schema.from_columns(value)
        return cols, n, None
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            cols, n = schema.from_records(value)
        else:
            cols, n = schema.from_rows(value, None)
        return cols, n, None
    if len(schema.columns) == 1:
        cols, n = schema.from_columns({schema.names[0]: value})
        return cols, n, None
    raise InvalidInput(f"{fmt} must be a list of records, a list of rows or an object of columns, got {_json_kind(value)}",
                       details={"field": fmt})


def _mlflow_parse(fmt: str, value: Any, schema: TabularSchema, params: dict[str, Any] | None) -> ParsedInput:
    """Anything the fast path does not cover: MLflow's own parsing, so its behaviour is MLflow's."""
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    mschema = schema.mlflow_schema
    if fmt == AZURE_KEY:
        # Azure's wrapper maps onto the MLflow format of the same shape.
        if isinstance(value, dict) and "data" in value:
            fmt = "dataframe_split"
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            fmt = "dataframe_records"
        else:
            fmt = "inputs"
    try:
        data = infer_and_parse_data({fmt: value}, mschema)
    except Exception as err:
        raise InvalidInput(_mlflow_message(err), details={"field": fmt}) from None
    enforced = False
    if isinstance(data, pd.DataFrame) and len(data) == 0:
        raise InvalidInput(f"{fmt} holds no rows; send at least one row to score", details={"field": fmt})
    if isinstance(data, pd.DataFrame) and mschema is not None and not mschema.is_tensor_spec():
        data = schema.enforce_frame(data)
        enforced = True
    return ParsedInput(data=data, params=params, rows=row_count(data), enforced=enforced, fmt=fmt)


def row_count(data: Any) -> int:
    if isinstance(data, (pd.DataFrame, pd.Series, np.ndarray, list)):
        return len(data)
    if isinstance(data, dict) and data:
        first = next(iter(data.values()))
        return len(first) if hasattr(first, "__len__") and not isinstance(first, str) else 1
    return 1


def frame_input(df: pd.DataFrame, schema: TabularSchema, fmt: str) -> ParsedInput:
    if len(df) == 0:
        # Without this the model gets an empty frame and (for most models) raises: a 424 for
        # what is the caller's mistake.
        what = {"csv": "the CSV body has a header row but no data rows",
                "parquet": "the Parquet file has no rows"}.get(fmt, f"{fmt} holds no rows")
        raise InvalidInput(f"{what}; send at least one row to score")
    enforced = schema.mlflow_schema is not None and not schema.mlflow_schema.is_tensor_spec()
    if enforced:
        df = schema.enforce_frame(df)
    return ParsedInput(data=df, rows=len(df), enforced=enforced, fmt=fmt)


def _parse_csv(body: bytes, schema: TabularSchema) -> ParsedInput:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidInput(f"the CSV body is not valid UTF-8: {err.reason} at byte {err.start}") from None
    if not text.strip():
        raise InvalidInput("the CSV body is empty; send a header row and one row per prediction")
    ms = schema.mlflow_schema
    # Read exactly as MLflow's server does (dtypes from the signature) ...
    try:
        if ms is not None and ms.has_input_names():
            df = pd.read_csv(StringIO(text), dtype=dict(zip(ms.input_names(), ms.pandas_types())))
        else:
            df = pd.read_csv(StringIO(text))
        return frame_input(df, schema, "csv")
    except InvalidInput:
        raise
    except Exception as err:
        first_error = err
    # ... and when that fails, re-read untyped so the error can name the offending column.
    try:
        strings = {c.name: object for c in schema.columns if c.kind == "str"}
        df = pd.read_csv(StringIO(text), dtype=strings or None)
    except Exception as err:
        raise InvalidInput(f"the body is not valid CSV: {err}") from None
    frame_input(df, schema, "csv")  # raises naming the column
    raise InvalidInput(f"the CSV body does not match the model signature: {first_error}")


def _parse_parquet(body: bytes, schema: TabularSchema) -> ParsedInput:
    try:
        df = pd.read_parquet(BytesIO(body))
    except Exception as err:
        raise InvalidInput(f"the body is not a valid Parquet file: {err}") from None
    return frame_input(df, schema, "parquet")


# --- predictions out ---------------------------------------------------------------------------


def _default(o: Any) -> Any:
    from mlflow.utils.proto_json_utils import NumpyEncoder

    res, converted = NumpyEncoder().try_convert(o)
    if converted:
        return res
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"the model returned a value of type {type(o).__name__}, which cannot be sent as JSON")


def jsonable(preds: Any) -> Any:
    """MLflow's conversion of model output: arrays to lists, frames and series to records."""
    if isinstance(preds, np.ndarray):
        return preds.tolist()
    if isinstance(preds, pd.DataFrame):
        return preds.to_dict(orient="records")
    if isinstance(preds, pd.Series):
        return pd.DataFrame(preds).to_dict(orient="records")
    return preds


def dumps(obj: Any) -> bytes:
    """Compact JSON; numpy scalars/arrays, timestamps and bytes serialize as MLflow's encoder does."""
    return json.dumps(obj, separators=(",", ":"), default=_default).encode()


def predictions_body(preds: Any) -> bytes:
    """``{"predictions": ...}`` exactly as ``mlflow models serve`` formats it."""
    return dumps({"predictions": jsonable(preds)})


def split_predictions(preds: Any, row_counts: Sequence[int]) -> list[Any]:
    """Cut the output of one batched predict back into per-request outputs.

    Raises ValueError when the output does not have one entry per input row (such a model cannot
    be batched; the batcher then predicts each request alone).
    """
    total = sum(row_counts)
    if isinstance(preds, (pd.DataFrame, pd.Series)):
        take: Callable[[int, int], Any] = lambda a, b: preds.iloc[a:b]
    elif isinstance(preds, (np.ndarray, list, tuple)):
        take = lambda a, b: preds[a:b]
    else:
        raise ValueError(f"cannot split model output of type {type(preds).__name__} by rows")
    if len(preds) != total:
        raise ValueError(f"model output has {len(preds)} entries for {total} input rows")
    out, start = [], 0
    for n in row_counts:
        out.append(take(start, start + n))
        start += n
    return out
