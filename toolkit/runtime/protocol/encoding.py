"""Content types and JSON in, predictions out, as ``mlflow models serve`` reads and writes them."""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ...errors import InvalidInput, UnsupportedMediaType

__all__ = ['JSON_TYPES', 'CSV_TYPES', 'PARQUET_TYPES', 'media_type', 'decode_json', 'jsonable', 'dumps', 'predictions_body', 'split_predictions']

JSON_TYPES = frozenset({"application/json", "text/json"})
CSV_TYPES = frozenset({"text/csv", "application/csv"})
PARQUET_TYPES = frozenset({"application/vnd.apache.parquet", "application/parquet", "application/x-parquet"})


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
