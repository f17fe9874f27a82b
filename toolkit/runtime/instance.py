"""One online deployment instance: a separate OS process hosting one model.

Started by the supervisor as::

    python -m toolkit.runtime.instance --uds /path/to.sock --config /path/config.json
    python -m toolkit.runtime.instance --port 5099 --config config.json      # tests, benchmarks

With ``--uds`` the socket is 0600 and a connection from another uid is answered 403 and closed
before any request is read (:mod:`toolkit.runtime.unix_socket`): only the host's user gets in.

config.json (unknown keys are ignored, so the supervisor may add some):

=====================================  ==========================================================
``endpoint``                           endpoint name (V2 ``model_name``, log lines)
``deployment``                         deployment name
``instance_id``                        this instance's id (log lines, ``X-Instance-Id``)
``model_path``                         local MLflow model folder (the host downloaded it)
``model_uri``                          the pinned URI, e.g. ``models:/churn/1`` (V2 version)
``code``                               folder of the scoring script, or null
``scoring_script``                     script file name inside ``code`` (or a path), or null
``batching``                           ``{"max_batch_size": 64, "max_batch_wait_ms": 0}``
``request_timeout_ms``                 queue + predict time limit per request (default 5000)
``max_concurrent_requests_per_instance``  requests in flight before 429 (default 16)
``max_body_bytes``                     larger bodies get 413 (default 20 MiB)
``max_stuck_predictions``              runaway predictions that make /health/live fail (2)
=====================================  ==========================================================

Routes (a raw ASGI app: no framework routing, nothing per request that is not needed):

* ``POST /score`` (alias ``/invocations``): any body :mod:`toolkit.runtime.protocol` accepts;
  answers ``{"predictions": ...}`` or ``{"error_code", "message"}`` with the status of
  :mod:`toolkit.errors`.  Headers: ``X-Batch-Size`` (requests in the predict call that served
  this one), ``X-Batch-Rows`` (rows in it), ``X-Instance-Id``; ``X-Request-Id`` is echoed.
* ``POST /v2/infer``: Open Inference Protocol request and response (:mod:`toolkit.runtime.protocol.v2`),
  JSON or with binary tensors (``Inference-Header-Content-Length``), optionally gzip/deflate
  compressed (``Content-Encoding``); errors as ``{"error": ...}``.
* ``GET /v2/model``: V2 model metadata from the signature.
* ``GET /health/live``: 200 unless too many predictions are stuck (then 503: restart me).
* ``GET /health/ready``: 200 once the model is loaded (503 before, and when not live).
* ``GET /stats``: JSON counters (requests, errors by status, in flight, batches, rows, batch size
  histograms, predict seconds, model load seconds, runaway/stuck predictions).

SIGTERM/SIGINT stop it gracefully (in-flight requests get up to 5 s; uvicorn then re-raises the
signal, so the exit status is -15 for SIGTERM).  A runaway prediction never holds up the exit.
A model that fails to load makes the process print the loader's full message to stderr, then a
last line ``MODEL_LOAD_FAILED: <message>``, and exit with code 3.  Stderr gets one line per
startup, shutdown and error; never a request body or header value.  Per-request error lines are
rate-limited (:class:`LineBudget`) so a flood of bad requests cannot fill the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable

from ..errors import (
    ClientDisconnected, HostError, InvalidInput, MethodNotAllowed, PayloadTooLarge, ToolkitError, TooManyRequests, Unavailable,
)
from .batcher import BatchStats, MicroBatcher
from .body import decompress, read_body
from .config import InstanceConfig
from .logbudget import LineBudget
from .protocol import ParsedInput, dumps
from .protocol.v2 import header_length, v2_error_body
from .scorer import Scorer

__all__ = ["InstanceApp", "main", "LOAD_FAILED_PREFIX", "LOAD_FAILED_EXIT_CODE"]

LOAD_FAILED_PREFIX = "MODEL_LOAD_FAILED: "
LOAD_FAILED_EXIT_CODE = 3
_OFFLOAD_BYTES = 1 << 20   # parse bodies bigger than this off the event loop
_OFFLOAD_ROWS = 5000       # format outputs bigger than this off the event loop

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


_JSON = b"application/json"
_OCTETS = b"application/octet-stream"
_V2_PATHS = ("/v2/infer", "/v2/model")


class InstanceApp:
    """The ASGI application of one instance (see the module docstring for the routes)."""

    def __init__(self, config: InstanceConfig, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.scorer: Scorer | None = None
        self.batcher: MicroBatcher | None = None
        self.batch_stats = BatchStats()
        self.load_error: str | None = None
        self.server: Any = None  # the uvicorn.Server, so a failed load can stop it
        self.started = time.time()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.responses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self._log_fn = log
        self._id_header = (b"x-instance-id", (config.instance_id or str(os.getpid())).encode())
        self._timeout = config.request_timeout_ms / 1000.0
        self._load_task: asyncio.Task[None] | None = None
        self._error_lines = LineBudget()

    # --- logging -------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} instance {self.config.endpoint}/{self.config.deployment}/{self.config.instance_id or os.getpid()}: {msg}"
        if self._log_fn is not None:
            self._log_fn(line)
        else:
            print(line, file=sys.stderr, flush=True)

    # --- model loading -------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.scorer is not None and self.batcher is not None and self.batcher.healthy

    async def _load(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        try:
            scorer = await loop.run_in_executor(None, lambda: Scorer.load(
                cfg.model_path, code=cfg.code, scoring_script=cfg.scoring_script,
                name=cfg.endpoint or None, version=cfg.model_version or cfg.deployment or None,
            ))
        except BaseException as err:  # noqa: BLE001 - anything at all means the instance is useless
            self.load_error = f"{getattr(err, 'message', None) or err}"
            traceback.print_exception(err, file=sys.stderr)
            self.log(f"model load failed: {self.load_error}")
            if self.server is not None:
                self.server.should_exit = True
            return
        self.batcher = MicroBatcher(
            scorer.predict, max_batch_size=cfg.max_batch_size if scorer.batchable else 1,
            max_batch_wait_ms=cfg.max_batch_wait_ms, timeout_s=self._timeout,
            max_stuck=cfg.max_stuck_predictions, stats=self.batch_stats,
        )
        self.batcher.start()
        self.scorer = scorer
        self.log(f"ready: model {cfg.model_uri or cfg.model_path} ({scorer.flavor}) loaded in {scorer.load_seconds:.2f}s, pid {os.getpid()}")

    # --- ASGI ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self._load_task = asyncio.get_running_loop().create_task(self._load())
                self.log(f"starting (pid {os.getpid()}), loading the model")
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self.batcher is not None:
                    await self.batcher.close()
                if self.load_error is None:
                    self.log(f"stopped after {self.requests} requests")
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in ("/score", "/invocations", "/v2/infer"):
            if method != "POST":
                await self._not_allowed(send, path, "POST")
                return
            await self._score(scope, receive, send, v2=path == "/v2/infer")
            return
        if method not in ("GET", "HEAD"):
            await self._not_allowed(send, path, "GET, HEAD")
            return
        if path == "/health/live":
            ok = self.batcher is None or self.batcher.healthy
            await self._send(send, 200 if ok else 503, dumps({"status": "live" if ok else "stuck"}))
        elif path in ("/health/ready", "/ping", "/health"):
            ok = self.ready
            await self._send(send, 200 if ok else 503, dumps({"status": "ready" if ok else ("loading" if self.scorer is None else "stuck")}))
        elif path == "/stats":
            await self._send(send, 200, dumps(self.stats()))
        elif path == "/v2/model":
            if self.scorer is None:
                await self._error(send, Unavailable("the model is still loading"), path)
            else:
                await self._send(send, 200, dumps(self.scorer.v2_metadata()))
        else:
            await self._send(send, 404, dumps({"error_code": "NotFound", "message": f"no route {method} {path}"}))

    async def _score(self, scope: Scope, receive: Receive, send: Send, v2: bool) -> None:
        self.requests += 1
        headers = dict(scope["headers"])
        extra = [self._id_header]
        rid = headers.get(b"x-request-id")
        if rid is not None:
            extra.append((b"x-request-id", rid))
        scorer, batcher = self.scorer, self.batcher
        path = scope["path"]
        if scorer is None or batcher is None:
            await self._error(send, Unavailable("the model is still loading" if self.load_error is None else "the model failed to load"), scope["path"], extra)
            return
        if self.in_flight >= self.config.max_concurrent_requests_per_instance:
            await self._error(send, TooManyRequests(
                f"this instance already has {self.in_flight} requests in flight "
                f"(max_concurrent_requests_per_instance={self.config.max_concurrent_requests_per_instance})"), scope["path"], extra)
            return
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await self._read_body(headers, receive)
            if v2:
                parse = self._v2_parser(scorer, body, headers)
            else:
                ctype = headers.get(b"content-type")
                content_type = ctype.decode("latin-1") if ctype is not None else None
                parse = lambda: scorer.parse(body, content_type)  # noqa: E731
            try:
                if len(body) > _OFFLOAD_BYTES:
                    inp = await asyncio.get_running_loop().run_in_executor(None, parse)
                else:
                    inp = parse()
            except ToolkitError:
                raise
            except Exception as err:  # noqa: BLE001 - whatever the body did to the parser, it is the body's fault
                raise self._unreadable(err) from None
            result = await batcher.submit(inp, self._timeout)
            if v2:
                fmt: Callable[[], tuple[bytes, int | None]] = lambda: scorer.v2_body(result.preds, inp.request_id, inp.v2)  # noqa: E731
            else:
                fmt = lambda: (scorer.body(result.preds), None)  # noqa: E731
            if inp.rows > _OFFLOAD_ROWS:
                out, json_len = await asyncio.get_running_loop().run_in_executor(None, fmt)
            else:
                out, json_len = fmt()
            extra.append((b"x-batch-size", str(result.batch_requests).encode()))
            extra.append((b"x-batch-rows", str(result.batch_rows).encode()))
            if json_len is None:
                await self._send(send, 200, out, extra)
            else:  # binary outputs follow the JSON header
                extra.append((b"inference-header-content-length", str(json_len).encode()))
                await self._send(send, 200, out, extra, _OCTETS)
        except ClientDisconnected:
            self._count("499")
        except ToolkitError as err:
            await self._error(send, err, path, extra)
        except Exception as err:  # a bug of ours: answer, log, stay up
            await self._error(send, HostError(f"the instance failed: {type(err).__name__}: {err}"), path, extra)
        finally:
            self.in_flight -= 1

    def _v2_parser(self, scorer: Scorer, body: bytes, headers: dict[bytes, bytes]) -> Callable[[], ParsedInput]:
        encoding = headers.get(b"content-encoding")
        if encoding is not None:
            body = decompress(body, encoding, self.config.max_body_bytes)
        json_len = header_length(headers.get(b"inference-header-content-length"), len(body))
        return lambda: scorer.parse_v2(body, json_len)

    def _unreadable(self, err: Exception) -> InvalidInput:
        """A body that broke the parser in a way we did not foresee: the caller's 400, our log line."""
        if isinstance(err, RecursionError):
            return InvalidInput("the request body nests lists or objects too deeply to read")
        allowed, _ = self._error_lines.take()
        if allowed:
            self.log(f"unforeseen parse failure ({type(err).__name__}); answering 400:\n"
                     + "".join(traceback.format_exception(err)[-6:]).rstrip())
        return InvalidInput(f"the request body could not be read: {type(err).__name__}: {str(err)[:300]}")

    async def _not_allowed(self, send: Send, path: str, allow: str) -> None:
        err = MethodNotAllowed(f"{path} takes {allow}", allow=allow)
        body = v2_error_body(err) if path.startswith("/v2/") else err.to_body()
        await self._send(send, 405, dumps(body), [(b"allow", allow.encode())])

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                raise InvalidInput("the Content-Length header is not a number") from None
            if n > limit:
                raise PayloadTooLarge(f"the body has {n} bytes; this deployment accepts at most {limit} (max_body_bytes)")
        body = await read_body(receive, limit)
        if body is None:  # chunked or lying Content-Length: stop reading here
            raise PayloadTooLarge(f"the body exceeds {limit} bytes (max_body_bytes)")
        return body

    def _count(self, status: str) -> None:
        self.responses[status] = self.responses.get(status, 0) + 1

    async def _send(self, send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None,
                    content_type: bytes = _JSON) -> None:
        self._count(str(status))
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _error(self, send: Send, err: ToolkitError, path: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        status = err.status_code
        self.errors[str(status)] = self.errors.get(str(status), 0) + 1
        extra = list(extra or [])
        if isinstance(err, TooManyRequests):
            extra.append((b"retry-after", str(max(1, round(err.retry_after))).encode()))
        # Client errors may quote input values, so only their code and column go to the log.
        allowed, skipped = self._error_lines.take()
        if allowed:
            if skipped:
                self.log(f"({skipped} more request error lines were not logged; at most "
                         f"{self._error_lines.limit} per {self._error_lines.window:.0f} s)")
            where = f" column={err.details['column']!r}" if isinstance(err.details.get("column"), str) else ""
            detail = f": {err.message.splitlines()[0][:300]}" if status >= 424 or status in (408, 413, 415) else ""
            self.log(f"error {status} {err.error_code} on {path}{where}{detail}")
        await self._send(send, status, dumps(v2_error_body(err) if path in _V2_PATHS else err.to_body()), extra)

    def stats(self) -> dict[str, Any]:
        s: dict[str, Any] = {
            "endpoint": self.config.endpoint, "deployment": self.config.deployment,
            "instance_id": self.config.instance_id, "pid": os.getpid(),
            "ready": self.ready, "live": self.batcher is None or self.batcher.healthy,
            "uptime_seconds": round(time.time() - self.started, 3),
            "model_load_seconds": round(self.scorer.load_seconds, 3) if self.scorer else None,
            "requests": self.requests, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
            "queued": self.batcher.queued if self.batcher else 0,
            "responses_by_status": dict(sorted(self.responses.items())),
            "errors_by_status": dict(sorted(self.errors.items())),
        }
        s.update(self.batch_stats.to_dict())
        return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m toolkit.runtime.instance", description="Host one model for an online deployment.")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--uds", help="Unix socket path to listen on")
    where.add_argument("--port", type=int, help="TCP port on --host (tests, benchmarks)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--config", required=True, help="instance config.json (see the module docstring)")
    args = ap.parse_args(argv)

    try:
        config = InstanceConfig.load(args.config)
    except Exception as err:
        msg = f"cannot read instance config {args.config}: {err}"
        print(msg, file=sys.stderr)
        print(LOAD_FAILED_PREFIX + msg, file=sys.stderr, flush=True)
        return 2
    import uvicorn

    # Predictions run in a worker thread; with the default 5 ms GIL switch interval the event
    # loop thread would wait up to 5 ms for the GIL each time a request arrives mid-predict,
    # so requests reach the batcher late and batches stay small.  1 ms keeps the loop responsive.
    sys.setswitchinterval(0.001)
    app = InstanceApp(config)
    kwargs: dict[str, Any] = {}
    listeners: list[Any] | None = None
    http: Any = "httptools"
    if args.uds:
        # Bound here rather than by uvicorn (which makes the socket 0666): 0600, and every
        # connection's peer uid checked, so other local users cannot score past the gateway.
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        from .unix_socket import bind_private, same_user_only

        try:
            listeners = [bind_private(Path(args.uds))]
        except OSError as err:
            msg = f"cannot listen on {args.uds}: {err.strerror or err}"
            print(LOAD_FAILED_PREFIX + msg, file=sys.stderr, flush=True)
            return 2
        http = same_user_only(HttpToolsProtocol)
    else:
        kwargs.update(host=args.host, port=args.port)
    uconfig = uvicorn.Config(
        app, loop="uvloop", http=http, lifespan="on", access_log=False, log_level="warning",
        timeout_graceful_shutdown=5, server_header=False, date_header=False,
        # The gateway is the only client and pools its connections: do not close idle ones
        # under it (a request racing the close would have to be retried elsewhere).
        timeout_keep_alive=3600, **kwargs,
    )
    server = uvicorn.Server(uconfig)
    app.server = server
    server.run(sockets=listeners)
    if app.load_error is not None:
        print(LOAD_FAILED_PREFIX + " ".join(app.load_error.split()), file=sys.stderr, flush=True)
        return LOAD_FAILED_EXIT_CODE
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # A runaway prediction's thread cannot be stopped, and the interpreter would wait for it
    # forever at exit: leave without joining worker threads.
    os._exit(code)
