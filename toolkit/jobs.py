"""A batch job as the SDK sees it: refresh, wait with a progress bar, stream events, read outputs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .entities import Entity
from .errors import DeploymentFailed, ToolkitError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .client import HostClient

__all__ = ["Job", "TERMINAL_STATES"]

TERMINAL_STATES = ("Completed", "Failed", "Canceled")


class Job(Entity):
    kind = "job"

    def __init__(self, client: "HostClient", data: dict[str, Any]) -> None:
        super().__init__(data)
        self.__dict__["_client"] = client

    @property
    def name(self) -> str:
        return self._data["id"]

    def _summary(self) -> list[tuple[str, Any]]:
        keys = ("id", "endpoint", "deployment", "state", "progress", "output", "message")
        return [(k, self._data[k]) for k in keys if self._data.get(k) not in (None, "", {})]

    def refresh(self) -> "Job":
        self._data = self._client.call("GET", f"/jobs/{self.id}")
        return self

    @property
    def done(self) -> bool:
        return self._data.get("state") in TERMINAL_STATES

    def cancel(self) -> "Job":
        self._data = self._client.call("POST", f"/jobs/{self.id}/cancel")
        return self

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        return self._client.call("GET", "/events", params={"job": self.id, "since": since, "limit": 1000})

    def stream(self, poll: float = 0.5) -> Iterator[dict[str, Any]]:
        """Yield the job's events as they happen until it ends."""
        last = 0
        while True:
            for ev in self.events(since=last):
                last = max(last, ev["id"])
                yield ev
            if self.refresh().done:
                for ev in self.events(since=last):
                    yield ev
                return
            time.sleep(poll)

    def wait(self, progress: bool = False, timeout: float | None = None, poll: float = 0.5, raise_on_failure: bool = True) -> "Job":
        """Block until the job ends; ``progress=True`` shows a tqdm.auto bar of mini-batches."""
        bar = None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.refresh().done:
                if progress:
                    bar = self._update_bar(bar)
                if deadline is not None and time.monotonic() > deadline:
                    raise ToolkitError(f"job {self.id} is still {self.state} after {timeout:.0f} s")
                time.sleep(poll)
            if progress:
                bar = self._update_bar(bar)
        finally:
            if bar is not None:
                bar.close()
        if raise_on_failure and self.state == "Failed":
            raise DeploymentFailed(f"job {self.id} failed: {self._data.get('message') or 'see its error log'}")
        return self

    def _update_bar(self, bar: Any) -> Any:
        from tqdm.auto import tqdm

        prog = self._data.get("progress") or {}
        total = prog.get("total_minibatches") or None
        done = (prog.get("completed") or 0) + (prog.get("failed") or 0)
        if bar is None:
            bar = tqdm(total=total, desc=f"{self.id}", unit="mini-batch")
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        post = {"state": self._data.get("state"), "rows": prog.get("rows", 0)}
        if prog.get("rows_per_s"):
            post["rows/s"] = f"{prog['rows_per_s']:,.0f}"
        bar.set_postfix(post, refresh=False)
        bar.refresh()
        return bar

    @property
    def output_path(self) -> Path:
        return Path(self._data["output"])

    def outputs(self) -> "pd.DataFrame":
        """The predictions file of a completed job as a DataFrame."""
        import pandas as pd

        if self._data.get("state") != "Completed":
            self.refresh()
        folder = self.output_path
        recorded = (self._data.get("outputs") or {}).get("predictions")
        candidates = [Path(recorded)] if recorded else []
        candidates += sorted(folder.glob("predictions.*"))
        for path in candidates:
            if path.is_file():
                return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        action = ((self._data.get("spec") or {}).get("deployment") or {}).get("output_action")
        why = " (its output_action is summary_only)" if action == "summary_only" else ""
        raise ToolkitError(f"job {self.id} ({self._data.get('state')}) has no predictions file in {folder}{why}")
