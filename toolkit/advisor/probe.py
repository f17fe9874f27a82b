"""The measuring side of a model profile: runs as a *script* in a fresh child process.

It is started as ``python probe.py '<json args>'`` (not ``-m toolkit...``) so the child imports
nothing of the toolkit: the import time, load time and resident memory it reports are those of a
process that only serves the model, as an online instance or a batch worker does.  It writes its
results to a JSON file after every stage, so a parent that kills it on timeout still gets
whatever was measured before.

Only the standard library, MLflow, pandas and numpy are used here.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

__all__ = ["main"]


def _rss_mib() -> float:
    """Current resident set size of this process."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mib() -> float:
    """Peak resident set size so far (what a memory limit must allow)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    except ImportError:
        return _rss_mib()


def _write(path: str, result: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, path)  # the parent never reads a half-written file


def _example(model_path: str, model: Any) -> Any:
    """The model's own input example; else one synthesised from its signature."""
    import mlflow.models
    import pandas as pd

    try:
        example = mlflow.models.Model.load(model_path).load_input_example(model_path)
    except Exception:
        example = None
    if example is not None:
        if isinstance(example, dict) and all(not isinstance(v, (list, tuple)) for v in example.values()):
            example = pd.DataFrame([example])
        return example
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise RuntimeError("the model has neither an input example nor a column signature to build one from")
    row: dict[str, Any] = {}
    for spec in schema.inputs:
        kind = str(getattr(spec.type, "name", spec.type)).lower()
        row[spec.name] = "a" if "string" in kind else (False if "bool" in kind else (0 if "int" in kind or "long" in kind else 0.0))
    return pd.DataFrame([row])


def _repeat(example: Any, rows: int) -> Any:
    """``example`` repeated (row-wise) to exactly ``rows`` rows."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        reps = -(-rows // max(len(example), 1))
        return pd.concat([example] * reps, ignore_index=True).iloc[:rows].reset_index(drop=True)
    if isinstance(example, np.ndarray):
        reps = -(-rows // max(len(example), 1))
        return np.concatenate([example] * reps)[:rows]
    if isinstance(example, list):
        reps = -(-rows // max(len(example), 1))
        return (example * reps)[:rows]
    if isinstance(example, dict):
        return {k: _repeat(np.asarray(v), rows) for k, v in example.items()}
    raise RuntimeError(f"cannot repeat an input example of type {type(example).__name__} to size")


def _bytes_per_row(example: Any) -> float:
    """Rough JSON size of one row, for the payload limit of an online request."""
    import pandas as pd

    try:
        if isinstance(example, pd.DataFrame):
            return len(example.to_json(orient="split", index=False)) / max(len(example), 1)
        return len(json.dumps(example, default=lambda o: o.tolist())) / max(len(example), 1)
    except Exception:
        return 0.0


def measure(args: dict[str, Any]) -> None:
    out = args["output"]
    result: dict[str, Any] = {"stage": "starting", "latency_ms": {}, "latency_max_ms": {}, "repeats": {},
                              "rss_mib_by_rows": {}}
    t0 = time.perf_counter()
    import mlflow.pyfunc  # noqa: F401  (the import is part of what a cold worker pays)
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    result["import_s"] = time.perf_counter() - t0
    result["baseline_rss_mib"] = _rss_mib()
    result["stage"] = "imported"
    _write(out, result)

    t = time.perf_counter()
    model = mlflow.pyfunc.load_model(args["model_path"])
    result["load_s"] = time.perf_counter() - t
    result["loaded_rss_mib"] = _rss_mib()
    result["stage"] = "loaded"
    _write(out, result)

    example = _example(args["model_path"], model)
    result["example_rows"] = len(example) if hasattr(example, "__len__") else 1
    result["bytes_per_row"] = _bytes_per_row(example)
    t = time.perf_counter()
    model.predict(_repeat(example, 1))  # the first call pays lazy initialisation; it is not a latency sample
    result["first_predict_ms"] = (time.perf_counter() - t) * 1000
    budget = float(args.get("seconds_per_size", 0.3))
    for rows in args["sizes"]:
        data = _repeat(example, rows)
        samples: list[float] = []
        started = time.perf_counter()
        # At least 3 samples (one if a call is slow), then until the time budget is spent.
        while len(samples) < int(args.get("max_repeats", 50)):
            t = time.perf_counter()
            model.predict(data)
            samples.append((time.perf_counter() - t) * 1000)
            spent = time.perf_counter() - started
            if spent >= budget and (len(samples) >= 3 or samples[-1] > 1000):
                break
        result["latency_ms"][str(rows)] = statistics.median(samples)
        result["latency_max_ms"][str(rows)] = max(samples)
        result["repeats"][str(rows)] = len(samples)
        result["rss_mib_by_rows"][str(rows)] = _peak_rss_mib()
        result["rss_mib"] = _peak_rss_mib()
        result["stage"] = f"measured {rows}"
        _write(out, result)
    result["stage"] = "done"
    result["complete"] = True
    _write(out, result)


def main(argv: list[str]) -> int:
    args = json.loads(argv[1])
    try:
        measure(args)
    except Exception as err:  # reported to the parent as data, not as a crash it must parse
        try:
            with open(args["output"]) as fh:
                result = json.load(fh)
        except (OSError, ValueError):
            result = {}
        result["error"] = f"{type(err).__name__}: {err}"
        _write(args["output"], result)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
