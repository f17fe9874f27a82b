"""Batch endpoints: jobs scored on Dask (DESIGN.md section 7; docs/batch.md).

Imports are lazy: Dask workers import ``toolkit.batch.task`` and should not pay for the host's
modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BatchService"]


def __getattr__(name: str) -> Any:
    if name == "BatchService":
        from .service import BatchService

        return BatchService
    raise AttributeError(name)
