"""The host's ASGI app: control plane (FastAPI, ``/api/v1``) and data plane (the online service's
Starlette routes) in one process, so an endpoint's URL is stable for as long as the host runs."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .. import __version__
from ..context import HostContext, OnlineServiceProtocol
from ..control import ControlPlane
from ..errors import HostError, ToolkitError
from ..events import EventReason
from ..runtime.protocol.v2 import v2_error_body
from .api_schema import describe_request_errors, tidy_openapi
from .body_limit import ControlBodyLimit
from .control import build_router
from .live import build_live_router
from .logs import ClientErrorLog
from .pages import Pages, is_page_path

__all__ = ["create_app", "create_host_app", "HostApp", "DataPlane", "DATA_PLANE_PREFIXES"]

log = logging.getLogger("toolkit.host")


def _error(err: ToolkitError) -> JSONResponse:
    headers = {}
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return JSONResponse(err.to_body(), status_code=err.status_code, headers=headers)


def _allowed_methods(app: FastAPI, path: str) -> str:
    """The methods the OpenAPI document lists for ``path`` (so `Allow` and the schema agree)."""
    for template, ops in app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            return ", ".join(sorted(m.upper() for m in ops))
    return ""


def create_app(ctx: HostContext, admin_token: str, request_shutdown: Callable[[], None] = lambda: None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.settings.started_at = ctx.settings.started_at or time.time()
        await ctx.online.start()
        await ctx.batch.start()
        ctx.event(EventReason.HostStarted, f"host {__version__} listening on {ctx.settings.url}")
        try:
            yield
        finally:
            for name, service in (("batch", ctx.batch), ("online", ctx.online)):
                try:
                    await service.stop()
                except Exception:
                    log.exception("stopping the %s service failed", name)
            ctx.event(EventReason.HostStopped, "host stopped")

    app = FastAPI(
        title="Endpoints Toolkit host",
        version=__version__,
        description="Control plane (`/api/v1`, admin token) and data plane (`/endpoints/...`, `/v2/...`).",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.plane = ControlPlane(ctx)  # what the /api/v1 routes call (toolkit/control/)
    app.state.admin_token = admin_token
    app.state.request_shutdown = request_shutdown

    @app.exception_handler(ToolkitError)
    async def toolkit_error(request: Request, err: ToolkitError) -> JSONResponse:
        return _error(err)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        message, fields = describe_request_errors(list(err.errors()), request.headers.get("content-type"))
        return JSONResponse({"error_code": "InvalidSpec", "message": message, "details": {"fields": fields}},
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}.get(err.status_code, "HTTPError")
        message = f"no route {request.method} {request.url.path}" if err.status_code in (404, 405) else str(err.detail)
        headers = dict(getattr(err, "headers", None) or {})
        if err.status_code == 405:
            # `Allow` must list every method of the path (RFC 9110); Starlette names only those of
            # the first route that matched the path, and FastAPI has one route per method.
            headers["Allow"] = _allowed_methods(app, request.url.path) or headers.get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        return JSONResponse({"error_code": code, "message": message}, status_code=err.status_code,
                            headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(HostError(f"internal error: {type(err).__name__}: {err}"))

    @app.get("/api/v1/health", tags=["host"], summary="Liveness of the host (no token needed)")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    app.include_router(build_router())
    app.include_router(build_live_router())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tidy_openapi(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(ControlBodyLimit)
    app.add_middleware(ClientErrorLog)  # added last: the outermost, so it sees the limit's 413s too
    return app


# The data plane's paths; everything else belongs to the control plane.  ("/v2" alone is the V2
# server metadata route.)
DATA_PLANE_PREFIXES = ("/endpoints/", "/v2", "/metrics")


class DataPlane:
    """The online data plane as one ASGI app: scoring paths go to the gateway's raw handler
    before any routing (the hot path); the rest (swagger, V2 metadata, /metrics) to a small
    Starlette app of the gateway's routes.  Every answer off the hot path is sure to carry
    ``X-Request-Id`` and ``X-Deployment`` (empty when no deployment is involved), as scoring's do."""

    def __init__(self, online: OnlineServiceProtocol, lifespan: Any = None) -> None:
        self.scoring = online.scoring_app
        self.routes = Starlette(routes=online.routes(), lifespan=lifespan, exception_handlers={
            ToolkitError: _toolkit_error, StarletteHTTPException: _not_found, Exception: _unexpected,
        })

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.routes(scope, receive, send)
            return
        score = self.scoring(scope["path"])
        if score is not None:
            await score(scope, receive, send)
            return
        await self.routes(scope, receive, _with_data_plane_headers(scope, send))


def _with_data_plane_headers(scope: Any, send: Any) -> Any:
    rid = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")[:200] or uuid.uuid4().hex.encode()

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            names = {k.lower() for k, _ in headers}
            if b"x-request-id" not in names:
                headers.append((b"x-request-id", rid))
            if b"x-deployment" not in names:
                headers.append((b"x-deployment", b""))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _data_plane_error(request: Request, err: ToolkitError, headers: dict[str, str] | None = None) -> JSONResponse:
    """V2 routes answer errors as ``{"error": ...}`` (what V2 clients read), plus our fields."""
    body = v2_error_body(err) if request.url.path.startswith("/v2") else err.to_body()
    return JSONResponse(body, status_code=err.status_code, headers=headers)


async def _toolkit_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, ToolkitError)
    return _data_plane_error(request, err)


async def _not_found(request: Request, err: Exception) -> JSONResponse:
    status = getattr(err, "status_code", 404)
    fail = ToolkitError(f"no route {request.method} {request.url.path}")
    fail.error_code = {404: "NotFound", 405: "MethodNotAllowed"}.get(status, "HTTPError")
    fail.status_code = status
    allow = (getattr(err, "headers", None) or {}).get("Allow")
    return _data_plane_error(request, fail, {"Allow": allow} if allow else None)


async def _unexpected(request: Request, err: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _data_plane_error(request, HostError(f"internal error: {type(err).__name__}: {err}"))


class HostApp:
    """Sends data-plane requests straight to the :class:`DataPlane`, the rest to FastAPI.

    Scoring is the hot path: matched after ~30 control-plane routes, route matching alone was a
    quarter of the host's CPU per request.
    """

    def __init__(self, control: FastAPI, data: DataPlane, pages: Pages | None = None) -> None:
        self.control = control
        self.data = data
        self.pages = pages
        self.state = control.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.pages is not None and scope["type"] == "http" and is_page_path(scope["path"]):
            await self.pages(scope, receive, send)  # GET / and Swagger UI (see host/pages.py)
        elif scope["type"] == "http" and scope["path"].startswith(DATA_PLANE_PREFIXES):
            await self.data(scope, receive, send)
        else:
            await self.control(scope, receive, send)


def create_host_app(ctx: HostContext, admin_token: str, request_shutdown: Callable[[], None] = lambda: None) -> HostApp:
    """The ASGI app the host serves: control plane plus the online data plane."""
    control = create_app(ctx, admin_token, request_shutdown)
    return HostApp(control, DataPlane(ctx.online), Pages(ctx))
