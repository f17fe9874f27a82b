"""A batch job as the SDK sees it: refresh, watch its progress, wait with a progress bar, stream
events, read outputs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .entities import Entity
from .errors import DeploymentFailed, ToolkitError
from .live import job_progress_call
from .views import JOB_TERMINAL_STATES, JobProgress

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .client import HostClient

__all__ = ["Job", "TERMINAL_STATES", "watch_job"]

TERMINAL_STATES = JOB_TERMINAL_STATES


def watch_job(client: "HostClient", job_id: str, *, interval: float = 1.0,
              stop: threading.Event | None = None) -> Iterator[JobProgress]:
    """Yield a job's progress on every poll; ends after its terminal state, or as soon as ``stop``
    is set (the wait between polls is ``stop.wait``, so a cancel button acts at once)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        progress = client.run(job_progress_call(job_id))
        yield progress
        if progress.done or stop.wait(interval):
            return


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

    def stream(self, poll: float = 0.5, stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
        """Yield the job's events as they happen until it ends (or ``stop`` is set).

        Pages forward from a cursor, so a burst of events between two polls is never skipped.
        """
        stop = stop or threading.Event()
        cursor = 0
        while not stop.is_set():
            done = self.refresh().done   # read before the events: once done, one last read has them all
            while True:
                page = self._client.call("GET", "/events", params={"job": self.id, "after": cursor, "limit": 1000})
                for ev in page["events"]:
                    yield {k: v for k, v in ev.items() if v is not None}
                cursor = page["cursor"]
                if not page["more"]:
                    break
            if done or stop.wait(poll):
                return

    def progress(self) -> JobProgress:
        return self._client.run(job_progress_call(self.id))

    def watch(self, interval: float = 1.0, stop: threading.Event | None = None) -> Iterator[JobProgress]:
        return watch_job(self._client, self.id, interval=interval, stop=stop)

    def wait(self, progress: bool = False, timeout: float | None = None, poll: float = 0.5,
             raise_on_failure: bool = True, stop: threading.Event | None = None) -> "Job":
        """Block until the job ends (or ``stop`` is set); ``progress=True`` shows a tqdm.auto bar of
        mini-batches with the job's rows and rows/s."""
        bar = None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for p in watch_job(self._client, self.id, interval=poll, stop=stop):
                if progress:
                    bar = self._update_bar(bar, p)
                if not p.done and deadline is not None and time.monotonic() > deadline:
                    raise ToolkitError(f"job {self.id} is still {p.state} after {timeout:.0f} s")
        finally:
            if bar is not None:
                bar.close()
        self.refresh()
        if raise_on_failure and self.state == "Failed":
            raise DeploymentFailed(f"job {self.id} failed: {self._data.get('message') or 'see its error log'}")
        return self

    @staticmethod
    def _update_bar(bar: Any, p: JobProgress) -> Any:
        from tqdm.auto import tqdm

        total = p.mini_batches_total or None
        if bar is None:
            bar = tqdm(total=total, desc=p.id, unit="mini-batch")
        if total and bar.total != total:
            bar.total = total
        bar.n = p.mini_batches_done
        post: dict[str, Any] = {"state": p.state, "rows": p.rows}
        if p.rows_per_s:
            post["rows/s"] = f"{p.rows_per_s:,.0f}"
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
