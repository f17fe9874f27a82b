"""The MLflow and Azure ML request formats: JSON, CSV and Parquet bodies into :class:`ParsedInput`."""

from __future__ import annotations

from io import BytesIO, StringIO
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InvalidInput, UnsupportedMediaType
from .encoding import CSV_TYPES, JSON_TYPES, PARQUET_TYPES, decode_json, media_type
from .inputs import ParsedInput
from .schema import TabularSchema, json_kind, mlflow_message

__all__ = ['FORMAT_KEYS', 'AZURE_KEY', 'parse_request', 'frame_input', 'row_count']

FORMAT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
AZURE_KEY = "input_data"


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
        raise InvalidInput(f"'params' must be an object, got {json_kind(params)}", details={"field": "params"})
    return params


def _parse_json(doc: Any, schema: TabularSchema, allow_raw: bool) -> ParsedInput:
    if not isinstance(doc, dict):
        if allow_raw:
            return ParsedInput(data=doc, raw=True, fmt="raw")
        raise InvalidInput(f"{_ACCEPTED}; got {json_kind(doc)}")
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
            raise InvalidInput(f"{fmt} must be an object with 'columns' and 'data' (pandas split orient), got {json_kind(value)}",
                               details={"field": fmt})
        extra = set(value) - {"columns", "data", "index"}
        if extra:
            raise InvalidInput(f"{fmt} may only hold 'columns', 'data' and 'index'; got also {sorted(extra)}", details={"field": fmt})
        data, names, index = value.get("data"), value.get("columns"), value.get("index")
        if not isinstance(data, list):
            raise InvalidInput(f"{fmt}.data must be a list of rows, got {json_kind(data)}", details={"field": f"{fmt}.data"})
        if names is not None and not isinstance(names, list):
            raise InvalidInput(f"{fmt}.columns must be a list of column names", details={"field": f"{fmt}.columns"})
        cols, n = schema.from_rows(data, names)
        if index is not None and (not isinstance(index, list) or len(index) != n):
            raise InvalidInput(f"{fmt}.index must be a list with one label per row ({n})", details={"field": f"{fmt}.index"})
        return cols, n, index
    if fmt == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidInput(f"dataframe_records must be a list of records, got {json_kind(value)}", details={"field": fmt})
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
    raise InvalidInput(f"{fmt} must be a list of records, a list of rows or an object of columns, got {json_kind(value)}",
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
        raise InvalidInput(mlflow_message(err), details={"field": fmt}) from None
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

