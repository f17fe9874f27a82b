"""The OpenAPI 3 document of an endpoint's scoring route, generated from the model signature.

Served as ``GET /endpoints/{e}/swagger.json``.  It describes every body the route accepts (the
MLflow formats, Azure's ``input_data``, CSV, Parquet), the columns and their types, a request
example (the model's input example in ``dataframe_split`` form), the JSON error responses and
bearer auth.  OpenAPI 3.0.3 rather than 3.1, so older tools (and Swagger UI 4) read it too.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlsplit

__all__ = ["build_document", "ERROR_RESPONSES"]

ERROR_RESPONSES: dict[int, str] = {
    400: "Bad input: the message names the field or column.",
    401: "Missing, invalid or expired credential.",
    404: "Unknown endpoint, or no deployment takes traffic.",
    408: "The prediction exceeded request_timeout_ms.",
    413: "The body is larger than max_body_bytes.",
    415: "Unsupported content type.",
    424: "The model raised; the message says what.",
    429: "Over capacity; retry after the Retry-After header.",
    503: "No ready instance.",
}

# What the server accepts per column type (toolkit.runtime.protocol): integers in range and never
# null (an integer column cannot hold a missing value); null in the other types (NaN for numbers).
_TYPES: dict[str, dict[str, Any]] = {
    "long": {"type": "integer", "format": "int64", "minimum": -2 ** 63, "maximum": 2 ** 63 - 1},
    "integer": {"type": "integer", "format": "int32", "minimum": -2 ** 31, "maximum": 2 ** 31 - 1},
    "double": {"type": "number", "format": "double", "nullable": True},
    "float": {"type": "number", "format": "float", "nullable": True},
    "boolean": {"type": "boolean", "nullable": True},
    "string": {"type": "string", "nullable": True},
    "binary": {"type": "string", "format": "byte", "description": "base64"},
    "datetime": {"type": "string", "format": "date-time"},
}


def _schema_of(signature: Any, part: str) -> Any:
    """A Schema from a ModelSignature, or from the dict form the registry reports."""
    if signature is None:
        return None
    if isinstance(signature, dict):
        raw = signature.get(part)
        if raw is None:
            return None
        from mlflow.types import Schema

        return Schema.from_json(raw if isinstance(raw, str) else json.dumps(raw))
    return getattr(signature, part, None)


def _column_schema(spec: Any) -> dict[str, Any]:
    t = spec.type
    name = getattr(t, "name", None)
    if isinstance(name, str) and name in _TYPES:
        out = dict(_TYPES[name])
    else:
        out = {"description": f"MLflow type {t}"}
    if not getattr(spec, "required", True) and out.get("type") != "integer":
        out["nullable"] = True
    return out


def _tensor_schema(spec: Any) -> dict[str, Any]:
    import numpy as np

    kind = np.dtype(spec.type).kind
    leaf: dict[str, Any] = {"type": "integer"} if kind in "iu" else {"type": "number"} if kind == "f" else (
        {"type": "boolean"} if kind == "b" else {"type": "string"})
    node = leaf
    for _ in range(max(1, len(spec.shape))):
        node = {"type": "array", "items": node}
    return {**node, "description": f"tensor {spec.type} of shape {list(spec.shape)}"}


def _jsonable(value: Any) -> Any:
    """Example values as plain JSON (numpy scalars, NaN as null)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _example_split(input_example: Any, names: list[str] | None) -> dict[str, Any] | None:
    import pandas as pd

    if input_example is None:
        return None
    if isinstance(input_example, pd.DataFrame):
        df = input_example.head(5)
        return {"columns": [str(c) for c in df.columns], "data": [_jsonable(list(r)) for r in df.itertuples(index=False)]}
    if isinstance(input_example, dict) and "columns" in input_example and "data" in input_example:
        return {"columns": _jsonable(input_example["columns"]), "data": _jsonable(input_example["data"])[:5]}
    if isinstance(input_example, dict) and names and all(n in input_example for n in names):
        values = {n: input_example[n] if isinstance(input_example[n], list) else [input_example[n]] for n in names}
        rows = min(len(v) for v in values.values())
        return {"columns": names, "data": [[_jsonable(values[n][i]) for n in names] for i in range(min(rows, 5))]}
    return None


def build_document(
    endpoint_name: str, scoring_url: str, signature: Any, input_example: Any = None, auth_mode: str = "key",
) -> dict[str, Any]:
    """An OpenAPI 3.0.3 document for ``POST`` on ``scoring_url`` (e.g. http://host/endpoints/e/score)."""
    url = urlsplit(scoring_url)
    server = f"{url.scheme}://{url.netloc}" if url.scheme else "/"
    path = url.path or f"/endpoints/{endpoint_name}/score"

    inputs = _schema_of(signature, "inputs")
    outputs = _schema_of(signature, "outputs")
    names: list[str] | None = None
    components: dict[str, Any] = {}
    if inputs is not None and not inputs.is_tensor_spec() and inputs.has_input_names():
        names = inputs.input_names()
        props = {s.name: _column_schema(s) for s in inputs.inputs}
        required = [s.name for s in inputs.inputs if getattr(s, "required", True)]
        value_types = {json.dumps(p, sort_keys=True): p for p in props.values()}
        cell: dict[str, Any] = next(iter(value_types.values())) if len(value_types) == 1 else {"anyOf": list(value_types.values())}
        record = {"type": "object", "properties": props, "required": required,
                  "description": "One row: column name -> value. Extra columns are ignored."}
        row = {"type": "array", "items": cell, "description": f"Values in the column order {names}",
               "minItems": len(names), "maxItems": len(names)}
        columns = {"type": "object",
                   "properties": {k: {"oneOf": [{"type": "array", "items": v, "minItems": 1}, v]} for k, v in props.items()},
                   "required": required, "description": "Column name -> list of values (or one value for one row)."}
    elif inputs is not None and inputs.is_tensor_spec():
        tensor = _tensor_schema(inputs.inputs[0]) if len(inputs.inputs) == 1 else {
            "type": "object", "properties": {(s.name or f"input_{i}"): _tensor_schema(s) for i, s in enumerate(inputs.inputs)}}
        record = {"type": "object"}
        row = {"type": "array", "items": {}}
        columns = tensor
    else:
        record, row, columns = {"type": "object"}, {"type": "array", "items": {}}, {"type": "object"}
    # Every list of rows holds at least one row: the server refuses an empty request (400) rather
    # than call the model with nothing.
    rows_of = lambda item: {"type": "array", "items": item, "minItems": 1}  # noqa: E731
    split = {
        "type": "object", "required": ["data"], "additionalProperties": False,
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "nullable": True,
                        "description": "Column names (absent or null: the signature's column order).",
                        **({"example": names} if names else {})},
            "index": {"type": "array", "items": {}, "nullable": True, "description": "Optional row labels, one per row."},
            "data": rows_of(row),
        },
        "description": "pandas 'split' orient.",
    }
    params = {"type": "object", "additionalProperties": True, "nullable": True,
              "description": "Inference parameters (the model's params schema)."}
    record_ref = {"$ref": "#/components/schemas/Record"}
    components["schemas"] = {
        "Record": record,
        "DataframeSplit": split,
        "ScoringRequest": {
            "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs (MLflow) or input_data (Azure ML).",
            "oneOf": [
                {"type": "object", "required": ["dataframe_split"], "properties": {"dataframe_split": {"$ref": "#/components/schemas/DataframeSplit"}, "params": params}},
                {"type": "object", "required": ["dataframe_records"], "properties": {"dataframe_records": rows_of(record_ref), "params": params}},
                {"type": "object", "required": ["instances"], "properties": {"instances": {"oneOf": [rows_of(record_ref), rows_of(row), columns]}, "params": params}},
                {"type": "object", "required": ["inputs"], "properties": {"inputs": {"oneOf": [columns, rows_of(record_ref), rows_of(row)]}, "params": params}},
                {"type": "object", "required": ["input_data"], "properties": {"input_data": {"oneOf": [{"$ref": "#/components/schemas/DataframeSplit"}, rows_of(record_ref), rows_of(row), columns]}, "params": params}},
            ],
        },
        "Predictions": {
            "type": "object", "required": ["predictions"],
            "properties": {"predictions": _predictions_schema(outputs)},
        },
        "Error": {
            "type": "object", "required": ["error_code", "message"],
            "properties": {
                "error_code": {"type": "string", "example": "InvalidInput"},
                "message": {"type": "string", "example": "missing required column 'age'"},
                "details": {"type": "object", "additionalProperties": True},
            },
        },
    }
    json_media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ScoringRequest"}}
    example = _example_split(input_example, names)
    if example is not None:
        json_media["example"] = {"dataframe_split": example}
    csv_media: dict[str, Any] = {"schema": {"type": "string", "description": "A header row, then one row per prediction."}}
    if example is not None:
        csv_media["example"] = _csv(example)

    responses: dict[str, Any] = {
        "200": {
            "description": "Predictions, in the order of the input rows.",
            "headers": {
                "X-Deployment": {"schema": {"type": "string"}, "description": "The deployment that served the request."},
                "X-Request-Id": {"schema": {"type": "string"}},
            },
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Predictions"}}},
        },
    }
    for status, text in ERROR_RESPONSES.items():
        if status == 401 and auth_mode == "none":
            continue
        resp: dict[str, Any] = {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if status == 429:
            resp["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
        responses[str(status)] = resp

    operation: dict[str, Any] = {
        "operationId": "score",
        "summary": f"Score with endpoint {endpoint_name}",
        "description": "Real-time scoring. The body is MLflow's scoring protocol (or Azure ML's input_data); "
                       "the X-Deployment header picks a deployment and bypasses the traffic table.",
        "parameters": [{
            "name": "X-Deployment", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "Send the request to this deployment (azureml-model-deployment is accepted too).",
        }],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": json_media,
                "text/csv": csv_media,
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": responses,
    }
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": f"{endpoint_name} online endpoint", "version": "1.0",
                 "description": f"Scoring API of the online endpoint {endpoint_name!r}, generated from the model signature."},
        "servers": [{"url": server}],
        "paths": {path: {"post": operation}},
        "components": components,
    }
    if auth_mode != "none":
        components["securitySchemes"] = {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "An endpoint key" + (" or token" if auth_mode == "token" else "") + ": Authorization: Bearer <key>",
        }}
        doc["security"] = [{"bearerAuth": []}]
    return doc


def _predictions_schema(outputs: Any) -> dict[str, Any]:
    if outputs is None:
        return {"type": "array", "items": {}}
    if outputs.is_tensor_spec() and len(outputs.inputs) == 1:
        return _tensor_schema(outputs.inputs[0])
    if outputs.has_input_names() and len(outputs.inputs) > 1:
        return {"type": "array", "items": {"type": "object", "properties": {s.name: _column_schema(s) for s in outputs.inputs}}}
    return {"type": "array", "items": _column_schema(outputs.inputs[0]) if outputs.inputs else {}}


def _csv(example: dict[str, Any]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(example["columns"])
    w.writerows(example["data"])
    return buf.getvalue()
