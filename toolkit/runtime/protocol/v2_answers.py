"""V2 answers: model output as Open Inference ``outputs`` (JSON or binary), and V2 metadata.

The request side, and the protocol's description, are in :mod:`.v2`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InvalidInput
from .encoding import dumps

__all__ = ["V2_EXTENSIONS", "NUMPY_DTYPES", "MLFLOW_TO_V2", "OutputRequest", "v2_response", "v2_body", "v2_metadata", "v2_server_metadata"]

V2_EXTENSIONS = ["binary_tensor_data"]

# V2 datatype -> the numpy dtype of its binary form (little-endian, as the extension says).
NUMPY_DTYPES: dict[str, Any] = {
    "BOOL": np.dtype(np.bool_), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {
    "b1": "BOOL", "i1": "INT8", "i2": "INT16", "i4": "INT32", "i8": "INT64",
    "u1": "UINT8", "u2": "UINT16", "u4": "UINT32", "u8": "UINT64", "f2": "FP16", "f4": "FP32", "f8": "FP64",
}
MLFLOW_TO_V2 = {
    "long": "INT64", "integer": "INT32", "double": "FP64", "float": "FP32", "boolean": "BOOL",
    "string": "BYTES", "binary": "BYTES", "datetime": "BYTES",
}


def _v2_datatype(dtype: np.dtype[Any]) -> str:
    return _BY_DTYPE.get(f"{dtype.kind}{dtype.itemsize}", "BYTES")


@dataclass
class OutputRequest:
    """Which outputs the client wants, in which order, and which of them as binary data."""

    names: list[str] | None = None
    binary: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False


# --- responses ---------------------------------------------------------------------------------


def _parts(preds: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(preds, pd.DataFrame):
        return [(str(c), preds[c].to_numpy()) for c in preds.columns]
    if isinstance(preds, pd.Series):
        return [(str(preds.name) if preds.name is not None else "predict", preds.to_numpy())]
    if isinstance(preds, dict):
        return [(str(k), np.asarray(v)) for k, v in preds.items()]
    return [("predict", np.asarray(preds))]


def _as_text(x: Any) -> Any:
    return x if x is None or isinstance(x, (str, int, float, bool)) else str(x)


def _to_bytes(arr: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        out = []
        for x in arr.reshape(-1).tolist():
            b = x if isinstance(x, bytes) else ("" if x is None else str(x)).encode("utf-8")
            out.append(struct.pack("<I", len(b)))
            out.append(b)
        return b"".join(out)
    if datatype == "BOOL":
        return arr.astype(np.uint8).tobytes()
    return np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[datatype]).tobytes()


def v2_response(preds: Any, model_name: str, model_version: str | None = None, request_id: str | None = None,
                outputs: OutputRequest | None = None, tails: list[bytes] | None = None) -> dict[str, Any]:
    """Model output as V2 ``outputs`` (one per DataFrame column, else one named ``predict``).

    With ``tails`` (a list to fill), outputs asked for as binary get ``binary_data_size`` and
    their bytes are appended to ``tails`` in output order.
    """
    parts = _parts(preds)
    if outputs is not None and outputs.names is not None:
        have = dict(parts)
        unknown = [n for n in outputs.names if n not in have]
        if unknown:
            raise InvalidInput(f"the model has no output {unknown[0]!r}; its outputs are {sorted(have)}",
                               details={"field": "outputs"})
        parts = [(n, have[n]) for n in outputs.names]
    out_list = []
    for name, arr in parts:
        datatype = "BYTES" if arr.dtype.kind not in "biuf" else _v2_datatype(arr.dtype)
        entry: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
        binary = outputs is not None and tails is not None and outputs.binary.get(name, outputs.binary_default)
        if binary:
            raw = _to_bytes(arr, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            tails.append(raw)  # type: ignore[union-attr]
        elif datatype == "BYTES":
            entry["data"] = [_as_text(x) for x in arr.reshape(-1).tolist()]
        else:
            entry["data"] = arr.reshape(-1).tolist()
        out_list.append(entry)
    out: dict[str, Any] = {"model_name": model_name, "outputs": out_list}
    if model_version is not None:
        out["model_version"] = str(model_version)
    if request_id is not None:
        out["id"] = request_id
    return out


def v2_body(preds: Any, model_name: str, model_version: str | None = None, request_id: str | None = None,
            outputs: OutputRequest | None = None) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    tails: list[bytes] = []
    head = dumps(v2_response(preds, model_name, model_version, request_id, outputs, tails))
    if not tails:
        return head, None
    return head + b"".join(tails), len(head)


# --- metadata ----------------------------------------------------------------------------------


def _tensor_meta(schema: Any, default_name: str) -> list[dict[str, Any]]:
    if schema is None:
        return []
    out = []
    for i, spec in enumerate(schema.inputs):
        name = getattr(spec, "name", None) or (default_name if len(schema.inputs) == 1 else f"{default_name}_{i}")
        if schema.is_tensor_spec():
            dt = _v2_datatype(np.dtype(spec.type))
            shape = [int(s) for s in spec.shape]
        else:
            dt = MLFLOW_TO_V2.get(getattr(spec.type, "name", ""), "BYTES")
            shape = [-1]
        out.append({"name": name, "datatype": dt, "shape": shape})
    return out


def v2_metadata(name: str, version: str | None, signature: Any | None, flavor: str = "python_function") -> dict[str, Any]:
    """V2 model metadata (``GET /v2/models/{name}``) from an MLflow signature."""
    return {
        "name": name,
        "versions": [str(version)] if version is not None else [],
        "platform": f"mlflow_{flavor}",
        "inputs": _tensor_meta(getattr(signature, "inputs", None), "input"),
        "outputs": _tensor_meta(getattr(signature, "outputs", None), "predict"),
    }


def v2_server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``: who we are and which protocol extensions we speak."""
    return {"name": "endpoints-toolkit", "version": version, "extensions": list(V2_EXTENSIONS)}
