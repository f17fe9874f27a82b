"""The function a Dask worker runs for one mini-batch, and the per-process model cache.

A worker process loads a model once (keyed by its path and scoring script) and keeps it for
every later mini-batch, whichever job sends it.  Each mini-batch writes its own part file
(temporary name, then an atomic rename), so a part on disk is always complete, and a retry or
a re-run after a host restart simply replaces it with the same rows.  The return value is a
small summary: results never pile up in worker memory, which would keep an adaptive cluster
from scaling down.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput, ModelError
from ..registry import fetch_model
from ..runtime.scripts import load_scoring_script
from .inputs import MiniBatch
from .reader import read_slice, schema_columns

__all__ = ["TaskConfig", "run_minibatch", "loaded_models", "predictions_frame"]

log = logging.getLogger("toolkit.batch.task")


@dataclass(frozen=True)
class TaskConfig:
    """Everything a worker needs; small and picklable (sent with every task)."""

    job_id: str
    model_path: str                 # a folder the worker can read (host cache or shared path)
    model_uri: str                  # models:/name/version, used when model_path is not reachable
    tracking_uri: str | None = None
    script: str | None = None       # absolute path of a scoring script (init/run)
    parts_dir: str | None = None    # where to write part files; None: return the part's bytes
    output_action: str = "append_row"
    part_format: str = "parquet"     # csv parts for a CSV output: finalizing is then a byte copy
    logging_level: str = "info"
    env: dict[str, str] = field(default_factory=dict)


class _Loaded:
    """A model (or a scoring script module) ready to score, loaded once per process."""

    def __init__(self, cfg: TaskConfig) -> None:
        started = time.perf_counter()
        os.environ.update(cfg.env)
        _limit_native_threads()
        self.path = _model_dir(cfg)
        self.module: Any = None
        self.model: Any = None
        self.columns: list[tuple[str, str | None]] | None = None
        if cfg.script:
            # Azure's contract: init() finds the model through AZUREML_MODEL_DIR.
            module = load_scoring_script(Path(cfg.script), self.path)
            self.module = module
        else:
            import mlflow.pyfunc

            self.model = mlflow.pyfunc.load_model(self.path)
            self.columns = schema_columns(self.model.metadata.get_input_schema())
        self.load_s = time.perf_counter() - started


def _limit_native_threads() -> None:
    """Apply OMP_NUM_THREADS to native pools already loaded.

    A worker forked from a fork server inherits BLAS/OpenMP libraries initialised there, before
    this worker's thread variables were set, so the variables alone would not reach them.
    """
    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit():
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=int(n))
        except Exception:  # a missing or odd native library must not stop scoring
            pass


_CACHE: dict[tuple[str, str | None], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def loaded_models() -> list[str]:
    """Model folders loaded in this process (a test looks at it through ``client.run``)."""
    return [k[0] for k in _CACHE]


def _model_dir(cfg: TaskConfig) -> str:
    if os.path.isdir(cfg.model_path):
        return cfg.model_path
    # A worker on another machine: fetch the model from the tracking server it can reach.
    return fetch_model(cfg.model_uri, tracking_uri=cfg.tracking_uri)


def _get(cfg: TaskConfig) -> _Loaded:
    key = (cfg.model_path, cfg.script)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    with _CACHE_LOCK:  # threads of one worker wait for a single load
        hit = _CACHE.get(key)
        if hit is None:
            hit = _CACHE[key] = _Loaded(cfg)
        return hit


def predictions_frame(raw: Any, n: int) -> pd.DataFrame:
    """A model's output as prediction columns (``prediction``, or the model's own names)."""
    if isinstance(raw, pd.DataFrame):
        df = raw.reset_index(drop=True)
        if list(df.columns) == [0]:
            df.columns = ["prediction"]
        return df.rename(columns=str)
    if isinstance(raw, pd.Series):
        return pd.DataFrame({"prediction": raw.to_numpy()})
    if isinstance(raw, dict):
        return pd.DataFrame({str(k): np.asarray(v).tolist() if np.asarray(v).ndim > 1 else np.asarray(v) for k, v in raw.items()})
    arr = np.asarray(raw)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return pd.DataFrame(arr, columns=[f"prediction_{i}" for i in range(arr.shape[1])])
    if arr.ndim > 2:
        return pd.DataFrame({"prediction": [a.tolist() for a in arr]})
    return pd.DataFrame({"prediction": arr.reshape(n) if arr.size == n else arr})


def run_minibatch(cfg: TaskConfig, mb: MiniBatch, attempt: int = 0) -> dict[str, Any]:
    """Score one mini-batch; raise only for a failure of the whole mini-batch (it is retried)."""
    started = time.perf_counter()
    logging.getLogger("toolkit").setLevel(cfg.logging_level.upper())
    loaded = _get(cfg)
    failed: list[dict[str, str]] = []
    timings: dict[str, float] = {}
    if loaded.module is not None:
        out = _run_script(loaded, mb)
        timings["run_s"] = time.perf_counter() - started  # the script reads and predicts itself
    else:
        out = _run_model(loaded, mb, failed, timings)
    rows = 0 if out is None else len(out)
    summary: dict[str, Any] = {
        "idx": mb.idx, "attempt": attempt, "rows": rows, "failed": failed, "pid": os.getpid(),
        "load_s": round(loaded.load_s, 3), "part": None, "data": None,
    }
    if cfg.output_action == "append_row" and out is not None:
        import pyarrow as pa

        written = time.perf_counter()
        table = pa.Table.from_pandas(out, preserve_index=False)
        if cfg.parts_dir is not None:
            final = Path(cfg.parts_dir) / f"part-{mb.idx:06d}.{cfg.part_format}"
            tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
            _write_table(table, tmp, cfg.part_format)
            os.replace(tmp, final)  # atomic: a part is either whole or absent
            summary["part"] = str(final)
        else:
            buf = io.BytesIO()
            _write_table(table, buf, cfg.part_format)
            summary["data"] = buf.getvalue()
        timings["write_s"] = time.perf_counter() - written
    summary["seconds"] = round(time.perf_counter() - started, 3)
    summary["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return summary


def _write_table(table: Any, where: Any, fmt: str) -> None:
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, where)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, where)


def _run_model(loaded: _Loaded, mb: MiniBatch, failed: list[dict[str, str]],
               timings: dict[str, float]) -> pd.DataFrame | None:
    t0 = time.perf_counter()
    frames, codes, rows = [], [], []
    names: dict[str, int] = {}
    bad: set[str] = set()
    for s in mb.slices:
        if s.file in bad:
            continue
        try:
            df = read_slice(s, loaded.columns)
        except InvalidInput as err:
            bad.add(s.file)
            failed.append({"file": s.file, "name": s.name, "error": err.message})
            continue
        frames.append(df)
        # The file name as a category code: 100k copies of one Python string cost ~18 ms a
        # mini-batch to build and convert; codes cost nothing and write the same CSV/Parquet.
        codes.append(np.full(len(df), names.setdefault(s.name, len(names)), dtype=np.int32))
        rows.append(np.arange(s.start, s.start + len(df), dtype=np.int64))
    if not frames:
        return None
    # One predict call for the whole mini-batch: models are much faster on large batches.
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    t1 = time.perf_counter()
    timings["read_s"] = t1 - t0
    try:
        raw = loaded.model.predict(data)
    except Exception as err:
        files = ", ".join(dict.fromkeys(s.name for s in mb.slices if s.file not in bad))
        raise ModelError(f"the model raised on mini-batch {mb.idx} ({files}): {type(err).__name__}: {err}") from None
    timings["predict_s"] = time.perf_counter() - t1
    preds = predictions_frame(raw, len(data))
    if len(preds) != len(data):
        raise ModelError(f"the model returned {len(preds)} predictions for {len(data)} rows")
    file_name = pd.Categorical.from_codes(np.concatenate(codes), categories=list(names))
    head = pd.DataFrame({"file_name": file_name, "row": np.concatenate(rows)})
    preds = preds.rename(columns={c: f"prediction_{c}" for c in preds.columns if c in ("file_name", "row")})
    return pd.concat([head, preds], axis=1)


def _run_script(loaded: _Loaded, mb: MiniBatch) -> pd.DataFrame | None:
    try:
        result = loaded.module.run(mb.files)
    except Exception as err:
        raise ModelError(f"run() raised on mini-batch {mb.idx}: {type(err).__name__}: {err}") from None
    if result is None:
        return None
    if isinstance(result, pd.DataFrame):
        return result.reset_index(drop=True)
    if isinstance(result, (list, tuple, np.ndarray, pd.Series)):
        return pd.DataFrame({"prediction": list(result)})
    raise ModelError(f"run() must return a DataFrame or a list, got {type(result).__name__}")
