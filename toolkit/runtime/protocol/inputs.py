"""Parsed model input: one request body turned into what ``predict`` receives."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ['ParsedInput', 'combine_inputs']

# --- parsed input ----------------------------------------------------------------------------


@dataclass
class ParsedInput:
    """A request body turned into model input.

    ``columns`` is set by the fast path (typed arrays in signature order, the frame is built
    lazily, so a micro-batch concatenates arrays and builds one frame); ``data`` otherwise.
    ``enforced`` means the data already satisfies the signature exactly as MLflow's
    ``_enforce_schema`` would leave it, so a flavor-level predict may skip enforcement.
    ``raw`` marks decoded JSON that is not one of the MLflow formats (only for scoring scripts).
    """

    data: Any = None
    params: dict[str, Any] | None = None
    rows: int = 1
    columns: dict[str, np.ndarray] | None = None
    index: list[Any] | None = None
    enforced: bool = False
    raw: bool = False
    fmt: str = ""
    request_id: str | None = None  # V2 only
    v2: Any = None                 # V2 only: the outputs asked for (:class:`.v2.OutputRequest`)
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def frame(self) -> Any:
        """The model input (a DataFrame on the fast path)."""
        if self.columns is None:
            return self.data
        if self._frame is None:
            self._frame = pd.DataFrame(self.columns, index=self.index)
        return self._frame

    @property
    def batch_key(self) -> tuple[Any, ...] | None:
        """Requests with equal keys may share one predict call; None never batches."""
        if self.columns is None:
            return None
        params = json.dumps(self.params, sort_keys=True, default=str) if self.params else ""
        return (tuple(self.columns), tuple(a.dtype.str for a in self.columns.values()), params)


def combine_inputs(items: Sequence[ParsedInput]) -> ParsedInput:
    """One input holding the rows of ``items`` (same batch key) in order."""
    first = items[0]
    assert first.columns is not None
    names = list(first.columns)
    cols = {n: np.concatenate([it.columns[n] for it in items]) for n in names}  # type: ignore[index]
    return ParsedInput(columns=cols, params=first.params, rows=sum(it.rows for it in items), enforced=first.enforced)

