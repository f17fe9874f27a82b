"""A deployment's model, loaded: parse a body, predict, format the answer; and the micro-batcher.

Two kinds of deployment:

* an MLflow model folder, loaded with ``mlflow.pyfunc.load_model``.  For the ``mlflow.sklearn``
  flavor, input that the protocol already enforced against the signature goes straight to the
  unwrapped estimator's predict function (the one the pyfunc wrapper would call, honouring
  ``pyfunc_predict_fn``): pyfunc's own wrapper would only enforce the schema a second time and
  then make the same call, so the result is identical (tested) and ~0.5 ms cheaper per call.
* a scoring script (``code_configuration``), Azure style: a ``.py`` file defining ``init()``
  (optional, called once) and ``run(data)`` (or ``run(data, params)``).  Before ``init`` the
  model folder is exported as ``AZUREML_MODEL_DIR`` (Azure's name) and ``ENDPOINTS_MODEL_DIR``,
  and the code folder is put on ``sys.path``.  ``run`` receives:

  - a pandas DataFrame for the MLflow JSON formats, Azure's ``input_data``, CSV and Parquet,
    built as MLflow builds it without a signature (the script owns its input, so the model's
    signature is not enforced here; a pyfunc model the script calls still enforces it);
  - the decoded JSON value as is when the body is JSON but none of those formats.

  ``run`` may return a dict (sent as the response body as is) or anything else (sent as
  ``{"predictions": <value>}``, DataFrames as records, arrays as lists, as MLflow does).

:class:`MicroBatcher` coalesces concurrent requests into one predict call; see its docstring.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import importlib.util
import inspect
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidInput, ModelError, RequestTimeout, ToolkitError
from .protocol import (
    ParsedInput,
    TabularSchema,
    combine_inputs,
    dumps,
    parse_request,
    predictions_body,
    split_predictions,
)
from .protocol.v2 import OutputRequest, parse_v2_request, v2_body, v2_metadata

__all__ = ["Scorer", "MicroBatcher", "BatchStats", "BatchResult", "MODEL_DIR_VARS"]

MODEL_DIR_VARS = ("AZUREML_MODEL_DIR", "ENDPOINTS_MODEL_DIR")
_MAX_MESSAGE = 2000


def _model_error(err: BaseException, who: str = "the model") -> ToolkitError:
    """What the model raised, as the error the caller sees (schema failures are the caller's)."""
    if isinstance(err, ToolkitError):
        return err
    msg = getattr(err, "message", None) or str(err) or repr(err)
    if len(msg) > _MAX_MESSAGE:
        msg = msg[:_MAX_MESSAGE] + "..."
    if getattr(err, "error_class", None) == "SCHEMA_ENFORCEMENT_FAILED" or "Failed to enforce schema" in msg:
        return InvalidInput(msg)
    return ModelError(f"{who} raised {type(err).__name__}: {msg}", details={"exception": type(err).__name__})


class Scorer:
    """One loaded deployment.  ``parse*`` run on the event loop; ``predict`` in a worker thread."""

    def __init__(
        self, *, name: str, version: str | None, signature: Any | None, input_example: Any = None,
        model: Any = None, run: Callable[..., Any] | None = None, flavor: str = "python_function",
        load_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.version = version
        self.signature = signature
        self.input_example = input_example
        self.model = model
        self.flavor = flavor
        self.load_seconds = load_seconds
        # A scoring script owns its input (it often preprocesses before the model sees anything),
        # so its frames are built as MLflow builds them without a signature: no enforcement.
        self.schema = TabularSchema(None) if run is not None else TabularSchema.from_signature(signature)
        self._run = run
        self._run_takes_params = False
        if run is not None:
            ps = inspect.signature(run).parameters
            self._run_takes_params = "params" in ps or any(p.kind is p.VAR_KEYWORD for p in ps.values())
        self._fast_predict: Callable[[Any], Any] | None = None
        if model is not None and getattr(model, "loader_module", None) == "mlflow.sklearn":
            predict_fn = model.metadata.flavors.get("python_function", {}).get("predict_fn", "predict")
            try:
                self._fast_predict = getattr(model.get_raw_model(), predict_fn)
            except Exception:  # no raw model or no such function: pyfunc's path only
                self._fast_predict = None

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(
        cls, model_path: str | os.PathLike[str], *, code: str | None = None, scoring_script: str | None = None,
        name: str | None = None, version: str | None = None,
    ) -> "Scorer":
        """Load a model folder (and the scoring script, if given); failures are :class:`ModelError`."""
        import mlflow.models

        t0 = time.perf_counter()
        path = Path(model_path)
        name = name or path.name
        mlmodel = path / "MLmodel"
        if scoring_script:
            meta = None
            if mlmodel.exists():
                try:
                    meta = mlflow.models.Model.load(str(mlmodel))
                except Exception as err:
                    raise ModelError(f"cannot read {mlmodel}: {err}") from err
            run = _load_script(path, code, scoring_script)
            example = _input_example(meta, path) if meta is not None else None
            return cls(name=name, version=version, signature=getattr(meta, "signature", None), input_example=example,
                       run=run, flavor="scoring_script", load_seconds=time.perf_counter() - t0)
        if not mlmodel.exists():
            raise ModelError(f"{path} is not an MLflow model folder (no MLmodel file)")
        try:
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(path))
        except Exception as err:
            raise ModelError(f"cannot load the MLflow model at {path}: {type(err).__name__}: {err}") from err
        meta = model.metadata
        flavor = next((f for f in meta.flavors if f != "python_function"), "python_function")
        return cls(name=name, version=version, signature=meta.signature, input_example=_input_example(meta, path),
                   model=model, flavor=flavor, load_seconds=time.perf_counter() - t0)

    # --- the request path ------------------------------------------------------------------
    @property
    def is_script(self) -> bool:
        return self._run is not None

    @property
    def batchable(self) -> bool:
        """Scripts are never batched: their output need not have one entry per row."""
        return self._run is None

    def parse(self, body: bytes, content_type: str | None) -> ParsedInput:
        return parse_request(body, content_type, self.schema, allow_raw=self.is_script)

    def parse_v2(self, body: bytes, header_len: int | None = None) -> ParsedInput:
        return parse_v2_request(body, self.schema, header_len)

    def predict(self, inp: ParsedInput) -> Any:
        """Run the model (blocking); errors come out as InvalidInput or ModelError."""
        data = inp.frame
        try:
            if self._run is not None:
                if self._run_takes_params:
                    return self._run(data, params=inp.params)
                return self._run(data)
            if inp.enforced and self._fast_predict is not None and not inp.params:
                return self._fast_predict(data)
            return self.model.predict(data, params=inp.params)
        except Exception as err:
            raise _model_error(err, "the scoring script" if self._run is not None else "the model") from None

    def body(self, preds: Any) -> bytes:
        """The JSON response body of one request's output."""
        if self._run is not None and isinstance(preds, dict):
            return dumps(preds)
        return predictions_body(preds)

    def v2_body(self, preds: Any, request_id: str | None = None,
                outputs: OutputRequest | None = None) -> tuple[bytes, int | None]:
        """The V2 response body, and the JSON header's length when binary outputs follow it."""
        if self._run is not None and isinstance(preds, dict) and "outputs" in preds:
            return dumps(preds), None
        return v2_body(preds, self.name, self.version, request_id, outputs)

    def v2_metadata(self) -> dict[str, Any]:
        return v2_metadata(self.name, self.version, self.signature, self.flavor)


def _input_example(meta: Any, path: Path) -> Any:
    try:
        return meta.load_input_example(str(path))
    except Exception:
        return None


def _load_script(model_dir: Path, code: str | None, scoring_script: str) -> Callable[..., Any]:
    script = Path(scoring_script)
    if code and not script.is_absolute():
        script = Path(code) / script
    if not script.is_file():
        raise ModelError(f"scoring script {str(script)!r} does not exist")
    for var in MODEL_DIR_VARS:
        os.environ[var] = str(model_dir)
    folder = str(script.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = f"_endpoints_score_{abs(hash(str(script.resolve())))}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as err:
        raise ModelError(f"importing scoring script {script.name} failed: {type(err).__name__}: {err}") from err
    run = getattr(module, "run", None)
    if not callable(run):
        raise ModelError(f"scoring script {script.name} must define run(data)")
    init = getattr(module, "init", None)
    if callable(init):
        try:
            init()
        except Exception as err:
            raise ModelError(f"init() of scoring script {script.name} failed: {type(err).__name__}: {err}") from err
    return run


# --- micro-batching ----------------------------------------------------------------------------


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
                        it.future.set_exception(_model_error(err))
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
            it.future.set_exception(result if isinstance(result, ToolkitError) else _model_error(result))
        else:
            it.future.set_result(BatchResult(result, 1, it.inp.rows))
