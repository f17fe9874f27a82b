"""The Open Inference (V2) protocol, as KServe and Triton clients (``tritonclient.http``) speak it.

Request (``POST /v2/models/{m}[/versions/{v}]/infer``)::

    {"id"?: str, "parameters"?: {...}, "inputs": [{"name", "shape", "datatype", "data"?, "parameters"?}],
     "outputs"?: [{"name", "parameters"?: {"binary_data": bool}}]}

With the *binary tensor data* extension (what tritonclient sends by default) the body is that JSON
followed by raw tensor bytes: the ``Inference-Header-Content-Length`` header gives the length of
the JSON part, and each input with ``parameters.binary_data_size`` takes that many bytes of what
follows, in input order (numbers little-endian, BOOL one byte each, BYTES as a 4-byte
little-endian length before each element).  Outputs are sent the same way when asked for, per
output (``outputs[i].parameters.binary_data``) or for all (``parameters.binary_data_output``);
the answer then carries ``Inference-Header-Content-Length`` too.

Each input's ``datatype`` is checked against its data (INT64 data are whole numbers in range,
BOOL data are booleans, BYTES data are strings ...) and against the model's column (an integer
column takes INT*/UINT*, a float column FP* or integers, a boolean column BOOL, a string column
BYTES).  Tabular signatures take one input per column (shape ``[n]`` or ``[n, 1]``), or one input
of shape ``[n, k]`` holding whole rows in signature column order when one datatype fits every
column.  Errors on V2 routes are ``{"error": "..."}`` (plus our ``error_code`` and ``message``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InvalidInput, ToolkitError
from .encoding import decode_json
from .inputs import ParsedInput
from .mlflow_formats import frame_input, row_count
from .schema import TabularSchema
from .v2_answers import MLFLOW_TO_V2, NUMPY_DTYPES, V2_EXTENSIONS, OutputRequest, v2_body, v2_metadata, v2_response, v2_server_metadata

__all__ = [
    "V2_EXTENSIONS",
    "OutputRequest",
    "parse_v2_request",
    "v2_response",
    "v2_body",
    "v2_metadata",
    "v2_server_metadata",
    "v2_error_body",
    "header_length",
]

_BINARY_ONLY = {"BF16"}  # no JSON form (tritonclient refuses it too); read as float32
_INTEGER = {k for k in NUMPY_DTYPES if k.startswith(("INT", "UINT"))}
_FLOAT = {"FP16", "FP32", "FP64", "BF16"}
# Which declared datatypes a fast-path column kind takes (see TabularSchema).
_FITS = {"int": _INTEGER, "float": _FLOAT | _INTEGER, "bool": {"BOOL"}, "str": {"BYTES"}}


def v2_error_body(err: ToolkitError) -> dict[str, Any]:
    """The V2 error shape ``{"error": message}``, keeping our ``error_code``/``message`` beside it."""
    return {"error": err.message, **err.to_body()}


def header_length(value: str | bytes | None, body_size: int) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a JSON length within the body."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    try:
        n = int(text.strip())
    except ValueError:
        raise InvalidInput(f"Inference-Header-Content-Length must be a number of bytes, got {text[:40]!r}",
                           details={"field": "Inference-Header-Content-Length"}) from None
    if not 0 < n <= body_size:
        raise InvalidInput(f"Inference-Header-Content-Length is {n} but the body has {body_size} bytes",
                           details={"field": "Inference-Header-Content-Length"})
    return n


# --- requests ----------------------------------------------------------------------------------


@dataclass
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    values: Any  # a flat list (JSON data) or a flat numpy array (binary data)


def _bad(msg: str, where: str) -> InvalidInput:
    return InvalidInput(msg, details={"field": where})


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _flat(data: Any, ndim: int, where: str) -> list[Any]:
    """``data`` flat or nested as its shape (row-major), without recursion (bodies can nest deep)."""
    if not isinstance(data, list):
        return [data]
    out = data
    for _ in range(max(ndim - 1, 0)):
        nested = [isinstance(x, list) for x in out]
        if not any(nested):
            break
        if not all(nested):
            raise _bad(f"{where} mixes lists and values; send it flat or nested as its shape", where)
        out = [y for x in out for y in x]
    return out


def _check_json_values(values: list[Any], datatype: str, where: str) -> None:
    """Each JSON value is of the declared datatype (the first offender is named)."""
    if datatype == "BOOL":
        ok = lambda v: v is True or v is False  # noqa: E731
        expects = "true or false"
    elif datatype in _INTEGER:
        info = np.iinfo(NUMPY_DTYPES[datatype])
        lo, hi = int(info.min), int(info.max)
        ok = lambda v: type(v) is int and lo <= v <= hi  # noqa: E731
        expects = f"whole numbers from {lo} to {hi}"
    elif datatype in _FLOAT:
        ok = lambda v: v is None or (type(v) in (int, float) and (type(v) is float or abs(v) < 2 ** 1023))  # noqa: E731
        expects = "numbers (or null for a missing value)"
    else:  # BYTES
        ok = lambda v: v is None or type(v) is str  # noqa: E731
        expects = "strings (or null for a missing value)"
    for i, v in enumerate(values):
        if not ok(v):
            shown = repr(v) if not isinstance(v, (list, dict)) else (
                "a list (the data nest deeper than the shape)" if isinstance(v, list) else "an object")
            if len(shown) > 60:
                shown = shown[:60] + "..."
            raise _bad(f"{where} is declared {datatype}, whose data are {expects}; element {i} is {shown}", where)


def _from_bytes(raw: memoryview, t_shape: list[int], datatype: str, where: str) -> np.ndarray:
    n = math.prod(t_shape)
    if datatype == "BYTES":
        items: list[Any] = []
        off, size = 0, len(raw)
        while off < size:
            if off + 4 > size:
                raise _bad(f"{where}: BYTES element {len(items)} is cut short (no 4-byte length)", where)
            (length,) = struct.unpack_from("<I", raw, off)
            off += 4
            if off + length > size:
                raise _bad(f"{where}: BYTES element {len(items)} says {length} bytes but only {size - off} remain", where)
            b = bytes(raw[off:off + length])
            off += length
            try:
                items.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                items.append(b)
        if len(items) != n:
            raise _bad(f"{where} holds {len(items)} BYTES elements but shape {t_shape} needs {n}", where)
        arr = np.empty(n, dtype=object)
        arr[:] = items
        return arr
    dtype = np.dtype("<u2") if datatype == "BF16" else NUMPY_DTYPES[datatype]
    if len(raw) != n * dtype.itemsize:
        raise _bad(f"{where} has {len(raw)} bytes of binary data but shape {t_shape} of {datatype} needs "
                   f"{n * dtype.itemsize}", where)
    arr = np.frombuffer(raw, dtype=dtype)
    if datatype == "BF16":  # bfloat16 is the upper half of a float32
        return (arr.astype("<u4") << 16).view("<f4")
    if datatype == "BOOL":
        return np.frombuffer(raw, dtype=np.uint8) != 0
    return arr


def _outputs(doc: dict[str, Any], params: dict[str, Any] | None) -> OutputRequest:
    req = OutputRequest()
    if params is not None and "binary_data_output" in params:
        if not isinstance(params["binary_data_output"], bool):
            raise _bad("parameters.binary_data_output must be true or false", "parameters.binary_data_output")
        req.binary_default = params["binary_data_output"]
    outs = doc.get("outputs")
    if outs is None:
        return req
    if not isinstance(outs, list):
        raise _bad("'outputs' must be a list of {\"name\": ...} objects", "outputs")
    req.names = []
    for i, o in enumerate(outs):
        where = f"outputs[{i}]"
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise _bad(f"{where} must be an object with a string 'name'", where)
        if o["name"] in req.binary:
            raise _bad(f"{where}: output {o['name']!r} is requested twice", where)
        p = o.get("parameters") or {}
        if not isinstance(p, dict):
            raise _bad(f"{where}.parameters must be an object", f"{where}.parameters")
        if p.get("classification"):
            raise _bad(f"{where}: the classification extension is not supported; ask for the output itself", where)
        if "shared_memory_region" in p:
            raise _bad(f"{where}: shared memory is not supported over HTTP here; leave shared_memory_* out", where)
        binary = p.get("binary_data", req.binary_default)
        if not isinstance(binary, bool):
            raise _bad(f"{where}.parameters.binary_data must be true or false", f"{where}.parameters.binary_data")
        req.names.append(o["name"])
        req.binary[o["name"]] = binary
    return req


def _tensors(doc: dict[str, Any], binary: memoryview | None) -> list[_Tensor]:
    tensors: list[_Tensor] = []
    seen: set[str] = set()
    offset = 0
    for i, t in enumerate(doc["inputs"]):
        where = f"inputs[{i}]"
        if not isinstance(t, dict) or not {"name", "shape", "datatype"} <= set(t):
            raise _bad(f"{where} must have 'name', 'shape', 'datatype' and 'data' (or binary data)", where)
        name, shape, datatype = t["name"], t["shape"], t["datatype"]
        if not isinstance(name, str) or not name:
            raise _bad(f"{where}.name must be a non-empty string", f"{where}.name")
        if name in seen:
            raise _bad(f"{where}: input {name!r} is given twice", f"{where}.name")
        seen.add(name)
        where = f"inputs[{i}] ({name})"
        if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
            raise _bad(f"{where}: shape must be a list of non-negative integers", f"inputs[{i}].shape")
        if datatype not in NUMPY_DTYPES and datatype not in _BINARY_ONLY:
            raise _bad(f"{where}: datatype {datatype!r} is not a V2 datatype ({', '.join([*NUMPY_DTYPES, 'BF16'])})",
                       f"inputs[{i}].datatype")
        params = t.get("parameters") or {}
        if not isinstance(params, dict):
            raise _bad(f"{where}: parameters must be an object", f"inputs[{i}].parameters")
        if "shared_memory_region" in params:
            raise _bad(f"{where}: shared memory is not supported over HTTP here; send the data", f"inputs[{i}]")
        size = params.get("binary_data_size")
        if size is not None:
            if not _is_count(size):
                raise _bad(f"{where}: binary_data_size must be a non-negative integer", f"inputs[{i}].parameters")
            if binary is None:
                raise _bad(f"{where} has binary data but the request has no Inference-Header-Content-Length "
                           "header saying where the JSON part ends", "Inference-Header-Content-Length")
            if "data" in t:
                raise _bad(f"{where} has both 'data' and binary data; send one", f"inputs[{i}].data")
            if offset + size > len(binary):
                raise _bad(f"{where}: binary_data_size {size} goes past the end of the body", f"inputs[{i}].parameters")
            values: Any = _from_bytes(binary[offset:offset + size], shape, datatype, where)
            offset += size
        else:
            if "data" not in t:
                raise _bad(f"{where} has no 'data'", f"inputs[{i}].data")
            if datatype in _BINARY_ONLY:
                raise _bad(f"{where}: {datatype} can only be sent as binary data", f"inputs[{i}].datatype")
            values = _flat(t["data"], len(shape), where)
            if math.prod(shape) != len(values):
                raise _bad(f"{where} has {len(values)} values but shape {shape} needs {math.prod(shape)}",
                           f"inputs[{i}].data")
            _check_json_values(values, datatype, where)
        tensors.append(_Tensor(name, shape, datatype, values))
    if binary is not None and offset != len(binary):
        raise _bad(f"the body has {len(binary)} bytes after the JSON header but the inputs' binary_data_size "
                   f"add up to {offset}", "Inference-Header-Content-Length")
    return tensors


def parse_v2_request(body: bytes, schema: TabularSchema, header_len: int | None = None) -> ParsedInput:
    """An Open Inference request (JSON, or JSON + binary tensors when ``header_len`` is given)."""
    if header_len is not None:
        view = memoryview(body)
        doc, binary = decode_json(bytes(view[:header_len])), view[header_len:]
    else:
        doc, binary = decode_json(body), None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise _bad("a V2 inference request must be an object with a non-empty 'inputs' list", "inputs")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _bad("'id' must be a string", "id")
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise _bad("'parameters' must be an object", "parameters")
    outputs = _outputs(doc, params)
    tensors = _tensors(doc, binary)
    # Protocol-level parameters (Triton's, the binary extension's) are not model params.
    model_params = {k: v for k, v in (params or {}).items()
                    if k not in ("binary_data_output", "timeout", "priority", "sequence_id", "sequence_start",
                                 "sequence_end")} or None
    if model_params and schema.params_schema is not None:
        model_params = schema.enforce_params(model_params)
    elif schema.params_schema is None:
        model_params = None
    if schema.fast:
        inp = _fast_input(tensors, schema)
    else:
        inp = _mlflow_input(tensors, schema)
    inp.params, inp.request_id, inp.v2 = model_params, request_id, outputs
    return inp


def _fits(t: _Tensor, kind: str, column: str, mlflow_type: str) -> None:
    if t.datatype not in _FITS[kind]:
        want = MLFLOW_TO_V2.get(mlflow_type, "BYTES")
        raise InvalidInput(f"input {t.name!r} is declared {t.datatype} but the model's column {column!r} is "
                           f"{mlflow_type}; declare {want} (GET /v2/models/<name> lists each input's datatype)",
                           details={"column": column})


def _plain(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else values


def _fast_input(tensors: list[_Tensor], schema: TabularSchema) -> ParsedInput:
    if len(tensors) == 1 and tensors[0].name not in schema.by_name and len(tensors[0].shape) == 2:
        t = tensors[0]
        for c in schema.columns:
            _fits(t, c.kind, c.name, c.mlflow_type)
        rows, width = t.shape
        flat = _plain(t.values)
        cols, n = schema.from_rows([flat[r * width:(r + 1) * width] for r in range(rows)], None)
    else:
        for t in tensors:
            c = schema.by_name.get(t.name)
            if c is None:
                continue
            if not (len(t.shape) == 1 or (len(t.shape) == 2 and t.shape[1] == 1)):
                raise InvalidInput(f"input {t.name!r} must have shape [n] or [n, 1], got {t.shape}", details={"column": t.name})
            _fits(t, c.kind, c.name, c.mlflow_type)
        cols, n = schema.from_columns({t.name: _plain(t.values) for t in tensors if t.name in schema.by_name})
    if n == 0:
        raise InvalidInput("the inputs hold no rows; send at least one row to score", details={"field": "inputs"})
    return ParsedInput(columns=cols, rows=n, enforced=True, fmt="v2")


def _mlflow_input(tensors: list[_Tensor], schema: TabularSchema) -> ParsedInput:
    arrays = {}
    for t in tensors:
        dtype = np.dtype(np.float32) if t.datatype == "BF16" else NUMPY_DTYPES[t.datatype]
        try:
            arrays[t.name] = np.asarray(t.values, dtype=dtype).reshape(t.shape)
        except (ValueError, TypeError, OverflowError) as err:
            raise InvalidInput(f"input {t.name!r} cannot be read as {t.datatype}: {err}", details={"field": t.name}) from None
    ms = schema.mlflow_schema
    if ms is not None and not ms.is_tensor_spec():
        # Named columns: one column per (1-d) input, as a DataFrame MLflow then enforces.
        try:
            df = pd.DataFrame({k: (v.reshape(len(v)) if v.ndim == 2 and v.shape[1] == 1 else v) for k, v in arrays.items()})
        except ValueError as err:
            raise InvalidInput(f"V2 inputs cannot form a table: {err}") from None
        return frame_input(df, schema, "v2")
    data: Any = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    return ParsedInput(data=data, rows=row_count(data), fmt="v2")
