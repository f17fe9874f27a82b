"""A batch job's running count: mini-batch attempts, completed and failed work, speed and ETA."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ToolkitError
from .inputs import MiniBatch

__all__ = ["Attempt", "Tally", "describe_error"]


@dataclass
class Attempt:
    mb: MiniBatch
    attempt: int
    future: Any
    submitted: float
    started: float | None = None
    worker: str | None = None


@dataclass
class Tally:
    total: int
    completed: int = 0
    failed: int = 0
    rows: int = 0
    failed_files: int = 0
    first_error: str = ""
    failed_names: list[str] = field(default_factory=list)
    # This run only (a resumed job starts them again): its speed and where workers spent time.
    run_started: float = field(default_factory=time.monotonic)
    run_done: int = 0
    run_rows: int = 0
    worker_s: dict[str, float] = field(default_factory=dict)

    def rate(self) -> dict[str, Any]:
        """rows_per_s and eta_s from this run's finished mini-batches (None until one finishes)."""
        if not self.run_done:
            return {"rows_per_s": None, "eta_s": None, "worker_seconds": {}}
        spent = max(1e-9, time.monotonic() - self.run_started)
        left = max(0, self.total - self.completed - self.failed)
        return {
            "rows_per_s": round(self.run_rows / spent, 1),
            "eta_s": round(left * spent / self.run_done, 1),
            "worker_seconds": {k: round(v, 2) for k, v in self.worker_s.items()},
        }


def describe_error(error: Any) -> str:
    """A failed mini-batch's error as one line for the job's record (Dask's worker deaths explained)."""
    if isinstance(error, str):
        return error
    if isinstance(error, ToolkitError):
        return error.message
    name = type(error).__name__
    if name == "KilledWorker":
        return "the worker process died while scoring (Dask gave up after repeated worker deaths)"
    return f"{name}: {error}"
