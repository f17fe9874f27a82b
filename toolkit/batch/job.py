"""What a batch job is: its states, its id, its effective settings and its folders.

The store holds the job record; everything a runner needs to (re)start a job is in the record's
``spec`` (the deployment settings after per-job overrides, the pinned model, the folders), so a
restarted host resumes a job without reading the deployment again (it may have changed since).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidSpec
from ..specs import BatchDeployment, format_validation_error

__all__ = [
    "NOT_STARTED", "QUEUED", "RUNNING", "FINALIZING", "COMPLETED", "FAILED", "CANCEL_REQUESTED", "CANCELED",
    "STATES", "TERMINAL", "RESUMABLE", "OVERRIDES", "new_job_id", "effective_deployment", "JobPaths",
    "empty_progress",
]

NOT_STARTED = "NotStarted"
QUEUED = "Queued"
RUNNING = "Running"
FINALIZING = "Finalizing"
COMPLETED = "Completed"
FAILED = "Failed"
CANCEL_REQUESTED = "CancelRequested"
CANCELED = "Canceled"
STATES = (NOT_STARTED, QUEUED, RUNNING, FINALIZING, COMPLETED, FAILED, CANCEL_REQUESTED, CANCELED)
TERMINAL = (COMPLETED, FAILED, CANCELED)
# A host that stops (or dies) leaves jobs in these states; the next host picks them up.
RESUMABLE = (NOT_STARTED, QUEUED, RUNNING, FINALIZING, CANCEL_REQUESTED)

# Per-job overrides (``invoke --mini-batch-size`` ...) and where each lands in the deployment spec.
OVERRIDES: dict[str, tuple[str, ...]] = {
    "mini_batch_size": ("mini_batch_size",),
    "mini_batch_rows": ("mini_batch_rows",),
    "instance_count": ("resources", "instance_count"),
    "max_concurrency_per_instance": ("max_concurrency_per_instance",),
    "max_retries": ("retry_settings", "max_retries"),
    "timeout": ("retry_settings", "timeout"),
    "error_threshold": ("error_threshold",),
    "output_file_name": ("output_file_name",),
    "output_action": ("output_action",),
    "logging_level": ("logging_level",),
}


def new_job_id(endpoint: str, now: float | None = None) -> str:
    """``<endpoint>-<yyyymmdd-hhmmss>-<4 hex>``: sortable by time, readable, unique enough."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{endpoint}-{stamp}-{secrets.token_hex(2)}"


def effective_deployment(spec: dict[str, Any], overrides: dict[str, Any]) -> BatchDeployment:
    """The deployment spec with the job's overrides applied and validated like the spec itself.

    ``output`` is not a deployment field (it is the job's folder) and is handled by the caller.
    """
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.items()}
    for key, value in overrides.items():
        if key == "output" or value is None:
            continue
        path = OVERRIDES.get(key)
        if path is None:
            raise InvalidSpec(
                f"overrides.{key}: unknown override; allowed: output, {', '.join(sorted(OVERRIDES))}"
            )
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    try:
        return BatchDeployment.model_validate(data)
    except ValidationError as err:
        raise InvalidSpec(format_validation_error(err, "job overrides")) from None


@dataclass(frozen=True)
class JobPaths:
    """The job folder (state, parts, logs) and the output folder (what the user asked for)."""

    job_dir: Path
    output_dir: Path

    @property
    def files(self) -> Path:
        return self.job_dir / "inputs.json"

    @property
    def plan(self) -> Path:
        return self.job_dir / "plan.json"

    @property
    def parts(self) -> Path:
        return self.job_dir / "parts"

    @property
    def logs(self) -> Path:
        return self.job_dir / "logs"

    @property
    def errors(self) -> Path:
        return self.job_dir / "logs" / "errors"

    @property
    def overview(self) -> Path:
        return self.job_dir / "overview.json"

    def part(self, idx: int, fmt: str = "parquet") -> Path:
        return self.parts / f"part-{idx:06d}.{fmt}"

    @classmethod
    def of(cls, job: dict[str, Any]) -> "JobPaths":
        return cls(Path(job["spec"]["job_dir"]), Path(job["output"]))


def empty_progress(total: int = 0) -> dict[str, Any]:
    return {"total_minibatches": total, "completed": 0, "failed": 0, "rows": 0, "failed_files": 0, "elapsed_s": 0.0,
            "rows_per_s": None, "eta_s": None, "worker_seconds": {}}
