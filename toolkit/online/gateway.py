"""The data-plane gateway: auth, routing, throttling, forwarding to instances, mirroring.

The gateway never parses a scoring body: it forwards the bytes and the ``Content-Type`` to an
instance over its Unix socket (a pool of keep-alive connections per instance process, see
:mod:`.upstream`)
and relays the instance's answer.  Everything it needs per request is in memory (route tables,
secrets, slots), so the hot path is a few dictionary lookups, one ``verify`` and one socket
round trip.

Order of checks, so a caller learns the cheapest truth first: endpoint (404) → credential (401)
→ deployment (404) → body size (413) → capacity (429, or a bounded wait for a slot) → ready
instance (503) → the instance's own answer (400/408/415/424 ...), with the gateway's own 408
as a backstop when an instance does not answer in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import (
    ClientDisconnected, HostError, InvalidInput, MethodNotAllowed, NotFound, PayloadTooLarge, RequestTimeout,
    ToolkitError, TooManyRequests, Unauthorized, Unavailable, UpstreamError,
)
from ..runtime.body import read_body
from ..runtime.protocol.v2 import v2_error_body
from .auth import verify
from .deployment import Deployment, Instance
from .gateway_mirror import TIMEOUT_GRACE_S, Mirroring
from .gateway_routes import InfoRoutes, _Answer, _json_response
from .router import RouteTable
from .upstream import UpstreamReply

if TYPE_CHECKING:
    from .backend import GatewayBackend

__all__ = ["Gateway", "TIMEOUT_GRACE_S"]

log = logging.getLogger("toolkit.host")

_RETRY_AFTER_S = 1
_UNKNOWN = "(unknown)"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_V2_INFER = "/v2/infer"
# Request headers of the V2 binary extension and compression that the instance must see.
_V2_FORWARD = ("inference-header-content-length", "content-encoding")


class _Incoming:
    """The few parts of an ASGI request the scoring path reads (headers decoded once)."""

    __slots__ = ("method", "headers", "_receive")

    def __init__(self, scope: dict[str, Any], receive: Any) -> None:
        self.method: str = scope["method"]
        # reversed: for a repeated header the first value wins, as with Starlette's headers.get
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        self._receive = receive

    async def body(self, limit: int) -> bytes | None:
        """The whole body, or None as soon as it exceeds ``limit`` bytes."""
        try:
            return await read_body(self._receive, limit)
        except ClientDisconnected as err:
            raise _Answer(InvalidInput(err.message)) from None


class Gateway(InfoRoutes, Mirroring):
    def __init__(self, service: "GatewayBackend") -> None:
        self.svc = service
        self.metrics = service.metrics
        self._mirror_tasks: set[asyncio.Task[None]] = set()

    # --- routes --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        # The scoring routes are not here: the host sends them to :meth:`score_asgi` before any
        # routing (see :meth:`scoring_target`).  Every method reaches the handlers, which answer
        # a wrong one with a JSON 405 and an Allow header (the framework's own 405 is plain text).
        m = _ALL_METHODS
        return [
            Route("/endpoints/{endpoint}/swagger.json", self.swagger, methods=m, name="online-swagger"),
            Route("/v2", self.v2_server, methods=m, name="v2-server"),
            Route("/v2/models/{endpoint}/versions/{version}/ready", self.v2_model_ready, methods=m,
                  name="v2-version-ready"),
            Route("/v2/models/{endpoint}/versions/{version}", self.v2_model, methods=m, name="v2-version"),
            Route("/v2/models/{endpoint}/ready", self.v2_model_ready, methods=m, name="v2-model-ready"),
            Route("/v2/models/{endpoint}", self.v2_model, methods=m, name="v2-model"),
            Route("/v2/health/live", self.v2_live, methods=m, name="v2-live"),
            Route("/v2/health/ready", self.v2_ready, methods=m, name="v2-ready"),
            Route("/metrics", self.prometheus, methods=m, name="metrics"),
        ]

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _request_id(request: "Request | _Incoming") -> str:
        rid = request.headers.get("x-request-id")
        return rid[:200] if rid else uuid.uuid4().hex

    @staticmethod
    def _error_headers(err: ToolkitError, rid: str, deployment: str = "") -> dict[str, str]:
        headers = {"X-Request-Id": rid, "X-Deployment": deployment}
        if isinstance(err, TooManyRequests):
            headers["Retry-After"] = str(max(1, round(err.retry_after)))
        elif isinstance(err, MethodNotAllowed):
            headers["Allow"] = err.allow
        return headers

    def _error(self, err: ToolkitError, rid: str, deployment: str = "", v2: bool = False) -> Response:
        body = v2_error_body(err) if v2 else err.to_body()
        return _json_response(err.status_code, body, self._error_headers(err, rid, deployment))

    @staticmethod
    def _method(request: "Request | _Incoming", allowed: str) -> None:
        """GET routes take HEAD too (a HEAD answer carries the headers of the GET)."""
        method = request.method
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            allow = "GET, HEAD" if allowed == "GET" else allowed
            raise _Answer(MethodNotAllowed(f"{method} is not allowed here; use {allow}", allow=allow))

    def _table(self, endpoint: str, request: "Request | _Incoming") -> RouteTable:
        table = self.svc.tables.get(endpoint)
        if table is None:
            raise _Answer(NotFound(f"online endpoint {endpoint!r} does not exist"))
        if table.auth_mode != "none":
            try:
                verify(endpoint, table.auth_mode, request.headers.get("authorization"), table.secrets)
            except Unauthorized as err:
                raise _Answer(err) from None
        return table

    @staticmethod
    def _named(request: "Request | _Incoming", version: str | None = None) -> str | None:
        """The deployment the request names: a V2 version in the path, else the header."""
        if version is not None:
            return version
        headers = request.headers
        return headers.get("x-deployment") or headers.get("azureml-model-deployment")

    def _unknown_deployment(self, e: str, named: str, version: str | None) -> NotFound:
        if version is None:
            return NotFound(f"online endpoint {e!r} has no deployment {named!r}")
        names = sorted(d for (ep, d) in self.svc.deployments if ep == e)
        return NotFound(f"model {e!r} has no version {named!r}; its versions are its deployments: "
                        f"{', '.join(names) or '(none)'}")

    def _deployment(self, table: RouteTable, request: "Request | _Incoming",
                    version: str | None = None) -> tuple[Deployment, bool]:
        """The deployment to serve this request, and whether the traffic table chose it."""
        named = self._named(request, version)
        e = table.endpoint
        if named:
            dep = self.svc.deployments.get((e, named))
            if dep is None:
                if self.svc.is_deploying(e, named):
                    raise _Answer(Unavailable(f"deployment {named!r} of {e!r} is being created"), named)
                raise _Answer(self._unknown_deployment(e, named, version), named)
            return dep, False
        name = table.pick()
        if name is None:
            if table.unhealthy:
                raise _Answer(Unavailable(
                    f"every deployment with traffic on {e!r} has failed: {table.unhealthy}"))
            raise _Answer(NotFound(
                f"online endpoint {e!r} has no deployment with traffic; set its traffic or name a "
                "deployment with the X-Deployment header"))
        dep = self.svc.deployments.get((e, name))
        if dep is None:
            raise _Answer(Unavailable(f"deployment {name!r} of {e!r} is not running"), name)
        return dep, True

    async def _body(self, request: "_Incoming", dep: Deployment) -> bytes:
        limit = dep.settings.max_body
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise _Answer(InvalidInput(f"invalid Content-Length {declared[:40]!r}"), dep.name) from None
            if size > limit:
                raise _Answer(PayloadTooLarge(
                    f"request body of {size} bytes exceeds max_body_bytes={limit} of deployment {dep.name!r}"), dep.name)
        # Count while reading (a chunked upload has no declared size): stop at the cap instead
        # of buffering a flood.
        body = await request.body(limit)
        if body is None:
            raise _Answer(PayloadTooLarge(
                f"request body exceeds max_body_bytes={limit} of deployment {dep.name!r}"), dep.name)
        return body

    # --- slots ---------------------------------------------------------------------------
    async def _acquire(self, dep: Deployment, exclude: Instance | None = None) -> Instance:
        """A slot on the least-busy ready instance; wait boundedly, or refuse with 429/503."""
        inst = dep.try_acquire(exclude)
        if inst is not None:
            return inst
        loop = asyncio.get_running_loop()
        deadline = loop.time() + dep.settings.queue_wait_s
        while True:
            s = dep.settings
            n_ready = len(dep.ready)
            if dep.closed:
                raise Unavailable(f"deployment {dep.name!r} of {dep.endpoint!r} was removed")
            if n_ready == 0:
                if not dep.instances and not dep.pending:
                    if dep.failed:
                        raise Unavailable(f"deployment {dep.name!r} has no instance: {dep.failed}")
                    if self.svc.cold_start(dep):
                        # Scale from zero: wait for the start (bounded by the load and the timeout).
                        deadline = max(deadline, loop.time() + s.timeout_s + self.svc.startup_timeout_s)
                    else:
                        raise Unavailable(f"deployment {dep.name!r} of {dep.endpoint!r} has no instances")
                elif dep.cold_start is not None and not dep.cold_start.done():
                    deadline = max(deadline, loop.time() + s.timeout_s + self.svc.startup_timeout_s)
            elif dep.admitted > 2 * s.max_concurrent * n_ready:
                # Azure's rule: beyond twice the concurrent capacity of the ready instances, refuse
                # at once rather than let a queue grow that no client would wait for.
                raise TooManyRequests(
                    f"deployment {dep.name!r} is over capacity ({n_ready} ready instance(s) x "
                    f"{s.max_concurrent} concurrent requests); retry later", retry_after=_RETRY_AFTER_S)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._wait_exceeded(dep)
            fut: asyncio.Future[Instance | None] = loop.create_future()
            dep.waiters.append(fut)
            try:
                async with asyncio.timeout(remaining):
                    got = await fut
            except TimeoutError:
                if fut.done() and not fut.cancelled() and fut.result() is not None:
                    return fut.result()  # type: ignore[return-value]  # a slot arrived as time ran out
                raise self._wait_exceeded(dep) from None
            if got is not None:
                return got
            inst = dep.try_acquire()  # woken to look again (the routed set changed)
            if inst is not None:
                return inst

    @staticmethod
    def _wait_exceeded(dep: Deployment) -> ToolkitError:
        if dep.ready:
            return TooManyRequests(
                f"no free slot on deployment {dep.name!r} within max_queue_wait_ms="
                f"{round(dep.settings.queue_wait_s * 1000)}; retry later", retry_after=_RETRY_AFTER_S)
        if dep.failed:
            return Unavailable(f"deployment {dep.name!r} has no ready instance: {dep.failed}")
        # Right after `up` or a deploy the instances are still loading the model: say so, and
        # for how long, rather than only that none is ready.
        starting = [i.started_at for i in dep.instances + dep.pending
                    if i.state in ("Starting", "Restarting") and i.started_at]
        if starting:
            return Unavailable(
                f"deployment {dep.name!r} of {dep.endpoint!r}: its {len(starting)} instance(s) are starting "
                f"(for {max(0.0, time.time() - min(starting)):.0f} s); retry in a moment")
        return Unavailable(f"deployment {dep.name!r} of {dep.endpoint!r} has no ready instance")

    async def _send(self, inst: Instance, method: str, path: str, body: bytes | None,
                    content_type: str | None, rid: str, extra: dict[str, str] | None = None) -> UpstreamReply:
        upstream = inst.upstream
        if upstream is None:
            raise UpstreamError("instance has no connection pool (restarting)")
        headers = {"X-Request-Id": rid}
        if content_type:
            headers["Content-Type"] = content_type
        if extra:
            headers.update(extra)
        return await upstream.request(method, path, body, headers)

    async def _forward(self, dep: Deployment, method: str, path: str, body: bytes | None,
                       content_type: str | None, rid: str, extra: dict[str, str] | None = None) -> UpstreamReply:
        """Send to an instance; a connection that fails before an answer is retried once elsewhere."""
        failed: Instance | None = None
        for attempt in (0, 1):
            inst = await self._acquire(dep, exclude=failed)
            try:
                async with asyncio.timeout(dep.settings.timeout_s + TIMEOUT_GRACE_S):
                    return await self._send(inst, method, path, body, content_type, rid, extra)
            except UpstreamError:
                # The instance died (or is restarting) before answering: nothing reached the
                # caller, so another instance may take it.  Keep it out of routing until its
                # next probe says otherwise.
                inst.suspect = True
                dep.refresh()
                failed = inst
                if attempt == 0:
                    self.metrics.on_retry(dep.endpoint, dep.name)
                    continue
                raise Unavailable(f"instance {inst.id} of deployment {dep.name!r} failed before answering") from None
            except TimeoutError:
                raise RequestTimeout(
                    f"deployment {dep.name!r} did not answer within request_timeout_ms="
                    f"{round(dep.settings.timeout_s * 1000)}") from None
            finally:
                dep.release(inst)
        raise AssertionError("unreachable")

    # --- scoring (raw ASGI: the hot path builds no framework objects) ----------------------
    @staticmethod
    def scoring_target(path: str) -> tuple[str, str, str | None] | None:
        """``(endpoint, instance path, V2 version or None)`` when ``path`` is a scoring route, else None."""
        parts = path.split("/")
        # /endpoints/{e}/score|invocations,  /v2/models/{e}/infer,  /v2/models/{e}/versions/{v}/infer
        n = len(parts)
        if n == 4 and parts[1] == "endpoints" and parts[3] in ("score", "invocations") and parts[2]:
            return parts[2], "/score", None
        if n == 5 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "infer" and parts[3]:
            return parts[3], _V2_INFER, None
        if (n == 7 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "versions" and parts[6] == "infer"
                and parts[3] and parts[5]):
            return parts[3], _V2_INFER, parts[5]
        return None

    async def score_asgi(self, scope: dict[str, Any], receive: Any, send: Any, endpoint: str, path: str,
                         version: str | None = None) -> None:
        req = _Incoming(scope, receive)
        try:
            status, content, ctype, headers = await self._score(req, endpoint, path, version)
        except Exception as err:  # a bug of ours: answer JSON like every other error, and log it
            log.exception("unhandled error on %s %s", req.method, scope["path"])
            fail = HostError(f"internal error: {type(err).__name__}: {err}")
            body = v2_error_body(fail) if path == _V2_INFER else fail.to_body()
            status, content, ctype = fail.status_code, json.dumps(body).encode(), "application/json"
            headers = {"X-Request-Id": self._request_id(req), "X-Deployment": ""}
        out = [(b"content-type", (ctype or "application/json").encode("latin-1")),
               (b"content-length", str(len(content)).encode())]
        out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})

    async def _score(self, request: "_Incoming", endpoint: str, path: str,
                     version: str | None = None) -> tuple[int, bytes, str | None, dict[str, str]]:
        t0 = time.perf_counter()
        rid = self._request_id(request)
        label_e, label_d = _UNKNOWN, ""
        dep: Deployment | None = None
        extra: dict[str, str] | None = None
        try:
            self._method(request, "POST")
            if endpoint in self.svc.tables:
                label_e = endpoint
            table = self._table(endpoint, request)
            dep, weighted = self._deployment(table, request, version)
            label_d = dep.name
            body = await self._body(request, dep)
            ctype = request.headers.get("content-type")
            if path == _V2_INFER:
                extra = {k: request.headers[k] for k in _V2_FORWARD if k in request.headers} or None
            dep.admitted += 1
            dep.stats.touch()
            gauge = self.metrics.in_flight_gauge(endpoint, dep.name)
            gauge.inc()
            try:
                reply = await self._forward(dep, "POST", path, body, ctype, rid, extra)
            finally:
                dep.admitted -= 1
                gauge.dec()
        except _Answer as ans:
            return self._finish_error(ans.err, rid, label_e, ans.deployment or label_d, dep, t0, path)
        except ToolkitError as err:
            return self._finish_error(err, rid, label_e, label_d, dep, t0, path)
        status, content = reply.status, reply.body
        rctype, batch = reply.header(b"content-type"), reply.header(b"x-batch-size")
        latency = time.perf_counter() - t0
        dep.stats.record(status, latency)
        self.metrics.on_request(endpoint, dep.name, status, latency)
        if batch:
            try:
                self.metrics.on_batch(endpoint, dep.name, int(batch))
            except ValueError:
                pass
        if weighted and table.mirror is not None:
            mirror = table.mirror_now()
            if mirror is not None:
                self._mirror(endpoint, mirror, path, body, ctype, rid, extra)
        headers = {"X-Deployment": dep.name, "X-Request-Id": rid}
        if batch:
            headers["X-Batch-Size"] = batch
        if path == _V2_INFER:
            json_len = reply.header(b"inference-header-content-length")
            if json_len is not None:  # binary V2 outputs follow the JSON header
                headers["Inference-Header-Content-Length"] = json_len
        return status, content, rctype, headers

    def _finish_error(self, err: ToolkitError, rid: str, endpoint: str, deployment: str,
                      dep: Deployment | None, t0: float, path: str) -> tuple[int, bytes, str, dict[str, str]]:
        latency = time.perf_counter() - t0
        if dep is not None:
            dep.stats.record(err.status_code, latency)
        self.metrics.on_request(endpoint, deployment, err.status_code, latency if dep is not None else None)
        body = v2_error_body(err) if path == _V2_INFER else err.to_body()
        return err.status_code, json.dumps(body).encode(), "application/json", self._error_headers(err, rid, deployment)

