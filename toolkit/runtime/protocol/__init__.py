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

from .encoding import (CSV_TYPES, JSON_TYPES, PARQUET_TYPES, decode_json, dumps, jsonable, media_type,
                       predictions_body, split_predictions)
from .inputs import ParsedInput, combine_inputs
from .mlflow_formats import FORMAT_KEYS, frame_input, parse_request, row_count
from .schema import TabularSchema

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

