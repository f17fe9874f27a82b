"""The micro-batcher: concurrent requests with the same columns share one predict call.

See :class:`MicroBatcher` for the rules; the instance app (:mod:`.instance`) sends every scoring
request through it when the deployment turns batching on.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import RequestTimeout, ToolkitError
from .protocol import ParsedInput, combine_inputs, split_predictions

from .scorer import model_error

__all__ = ["MicroBatcher", "BatchStats", "BatchResult"]


@dataclass
class BatchStats:
    """Counters the instance shows on /stats."""

    batches: int = 0
    rows: int = 0
    requests: int = 0
    predict_seconds: float = 0.0
    batch_requests_histogram: dict[int, int] = field(default_factory=lambda: collections.defaultdict(int))
    batch_rows_histogram: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))
    split_failures: int = 0        # combined predicts that failed and were re-run one by one
    runaway_total: int = 0         # predictions that outlived their request timeout
    stuck: int = 0                 # runaway predictions still running now

    def record(self, n_requests: int, n_rows: int, seconds: float) -> None:
        self.batches += 1
        self.requests += n_requests
        self.rows += n_rows
        self.predict_seconds += seconds
        self.batch_requests_histogram[n_requests] += 1
        bucket = 1
        while bucket < n_rows:
            bucket *= 2
        self.batch_rows_histogram[f"le_{bucket}"] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches, "rows": self.rows, "predict_requests": self.requests,
            "predict_seconds": round(self.predict_seconds, 6),
            "batch_size_histogram": {str(k): v for k, v in sorted(self.batch_requests_histogram.items())},
            "batch_rows_histogram": dict(sorted(self.batch_rows_histogram.items(), key=lambda kv: int(kv[0][3:]))),
            "max_batch_size_seen": max(self.batch_requests_histogram, default=0),
            "split_failures": self.split_failures,
            "runaway_predictions": self.runaway_total, "stuck_predictions": self.stuck,
        }


@dataclass
class BatchResult:
    preds: Any
    batch_requests: int   # requests whose rows went through the same predict call
    batch_rows: int


@dataclass
class _Item:
    inp: ParsedInput
    key: Any
    future: asyncio.Future[BatchResult]


class MicroBatcher:
    """Coalesces concurrent requests into one predict call (one predict runs at a time).

    Requests that queue while a predict runs are taken together, up to ``max_batch_size`` rows,
    when it ends; with ``max_batch_wait_ms`` > 0 the batcher also waits that long for more, while
    0 takes only what is already queued, so a lone request never waits.  Only requests with the
    same columns, dtypes and ``params`` share a call (:attr:`ParsedInput.batch_key`); scripts and
    non-tabular input run alone.  A request larger than ``max_batch_size`` runs alone, unsplit.
    If a combined predict raises (or its output cannot be split by rows), each request is
    predicted again alone, so one bad request fails alone.

    Predictions run in a small thread pool.  A prediction still running at its callers' deadline
    is *runaway*: the callers get :class:`RequestTimeout`, the batcher stops waiting for it and
    goes on with the next batch on a spare thread.  ``stuck`` counts the runaway ones still
    running; the instance reports itself not live at ``max_stuck`` so it gets restarted.
    """

    def __init__(
        self, predict: Callable[[ParsedInput], Any], *, max_batch_size: int = 64, max_batch_wait_ms: float = 0.0,
        timeout_s: float | None = None, max_stuck: int = 2, stats: BatchStats | None = None,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_batch_wait_ms)) / 1000.0
        self.timeout_s = timeout_s
        self.max_stuck = max(1, max_stuck)
        self.stats = stats or BatchStats()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.max_stuck + 1, thread_name_prefix="predict")
        self._queue: collections.deque[_Item] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._settle_turns = 2 if self.max_batch_size > 1 else 0
        # Adaptive coalescing (max_batch_wait_ms = 0): with one predict at a time, closed-loop
        # clients split into groups that alternate (one predicts while the other is in transit),
        # halving batches.  Remember how many requests the last cycle saw (its batch plus what
        # queued meanwhile) and wait a fraction of a predict for that many to gather.  A lone
        # request never waits: its population is 1.
        self._adaptive = self.max_wait == 0 and self.max_batch_size > 1
        self._population = 1
        self._last_predict_s = 0.0

    @property
    def healthy(self) -> bool:
        return self.stats.stuck < self.max_stuck

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, inp: ParsedInput, timeout_s: float | None = None) -> BatchResult:
        """Queue one request and wait for its share of a predict call."""
        self.start()
        loop = asyncio.get_running_loop()
        key = inp.batch_key if self.max_batch_size > 1 else None
        item = _Item(inp, key, loop.create_future())
        self._queue.append(item)
        assert self._wakeup is not None
        self._wakeup.set()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        # A timer instead of wait_for/shield: two fewer futures per request on the hot path.
        timer = loop.call_later(timeout, self._expire, item, timeout) if timeout is not None else None
        try:
            return await item.future  # cancelled (client gone) -> the batcher skips the item
        finally:
            if timer is not None:
                timer.cancel()

    @staticmethod
    def _expire(item: _Item, timeout: float) -> None:
        if not item.future.done():
            item.future.set_exception(RequestTimeout(
                f"the prediction did not finish within request_timeout_ms ({int(timeout * 1000)} ms)"))

    # --- the dispatcher ------------------------------------------------------------------
    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Let the event loop run the requests whose bytes arrived while the last predict ran
            # (read, parse, enqueue: two loop turns) so they join this batch: "already queued"
            # must mean received, not only parsed.  Costs microseconds when nothing is pending.
            for _ in range(self._settle_turns):
                await asyncio.sleep(0)
            batch, rows = self._take([], 0)
            if not batch:
                continue
            wait, want = self.max_wait, self.max_batch_size
            if self._adaptive and len(batch) < self._population:
                # Half a predict at most (capped at 10 ms): worth it only because a predict of
                # a bigger batch costs little more than the one it replaces.  (Stopping early
                # when arrivals pause was measured: it halved RandomForest batches under load.)
                wait, want = min(0.5 * self._last_predict_s, 0.010), self._population
            if wait > 0 and batch[0].key is not None and rows < self.max_batch_size:
                deadline = asyncio.get_running_loop().time() + wait
                while rows < self.max_batch_size and len(batch) < want:
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except (asyncio.TimeoutError, TimeoutError):
                        pass
                    batch, rows = self._take(batch, rows)
            t0 = time.perf_counter()
            try:
                await self._execute(batch)
            except Exception as err:  # never let the dispatcher die; fail the batch instead
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(model_error(err))
            self._last_predict_s = time.perf_counter() - t0
            self._population = max(1, len(batch) + len(self._queue))

    def _take(self, batch: list[_Item], rows: int) -> tuple[list[_Item], int]:
        """Move compatible queued items into ``batch`` (order kept for the rest)."""
        keep: collections.deque[_Item] = collections.deque()
        while self._queue:
            it = self._queue.popleft()
            if it.future.done():
                continue  # its caller timed out or went away
            if not batch:
                batch.append(it)
                rows = it.inp.rows
                if it.key is None or rows >= self.max_batch_size:
                    break
                continue
            if it.key is not None and it.key == batch[0].key and rows + it.inp.rows <= self.max_batch_size:
                batch.append(it)
                rows += it.inp.rows
                if rows >= self.max_batch_size:
                    break
            else:
                keep.append(it)
        self._queue.extendleft(reversed(keep))
        return batch, rows

    async def _call(self, inp: ParsedInput, timeout: float | None) -> tuple[bool, Any, float]:
        """Predict on a worker thread.  Returns (finished, result or exception, seconds)."""
        t0 = time.perf_counter()
        cf = self._pool.submit(self._predict, inp)
        fut = asyncio.wrap_future(cf)
        done, _ = await asyncio.wait({fut}, timeout=timeout)
        if not done:
            # Runaway: the thread cannot be stopped; count it until it ends on its own.
            self.stats.runaway_total += 1
            self.stats.stuck += 1
            loop = asyncio.get_running_loop()

            def _ended(_: Any) -> None:
                loop.call_soon_threadsafe(self._unstuck)

            fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # silence "never retrieved"
            cf.add_done_callback(_ended)
            return False, RequestTimeout("the prediction did not finish within request_timeout_ms"), time.perf_counter() - t0
        err = fut.exception()
        seconds = time.perf_counter() - t0
        return (True, err, seconds) if err is not None else (True, fut.result(), seconds)

    def _unstuck(self) -> None:
        self.stats.stuck = max(0, self.stats.stuck - 1)

    async def _execute(self, batch: list[_Item]) -> None:
        live = [it for it in batch if not it.future.done()]
        if not live:
            return
        # Callers time out on their own; waiting for a predict longer than that is pointless.
        timeout = self.timeout_s
        if len(live) == 1:
            await self._one(live[0], timeout)
            return
        combined = combine_inputs([it.inp for it in live])
        ok, result, seconds = await self._call(combined, timeout)
        self.stats.record(len(live), combined.rows, seconds)
        if not ok:
            for it in live:
                if not it.future.done():
                    it.future.set_exception(result)
            return
        if not isinstance(result, BaseException):
            try:
                parts = split_predictions(result, [it.inp.rows for it in live])
            except ValueError:
                parts = None
            if parts is not None:
                for it, part in zip(live, parts):
                    if not it.future.done():
                        it.future.set_result(BatchResult(part, len(live), combined.rows))
                return
        # One bad request (or an output that is not one entry per row): predict each alone.
        self.stats.split_failures += 1
        for it in live:
            if not it.future.done():
                await self._one(it, timeout)

    async def _one(self, it: _Item, timeout: float | None) -> None:
        ok, result, seconds = await self._call(it.inp, timeout)
        self.stats.record(1, it.inp.rows, seconds)
        if it.future.done():
            return
        if isinstance(result, BaseException):
            it.future.set_exception(result if isinstance(result, ToolkitError) else model_error(result))
        else:
            it.future.set_result(BatchResult(result, 1, it.inp.rows))
