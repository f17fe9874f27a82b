"""The host's ASGI app: control plane (FastAPI, ``/api/v1``) and data plane (the online service's
Starlette routes) in one process, so an endpoint's URL is stable for as long as the host runs."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .. import __version__
from ..errors import HostError, ToolkitError
from .control import build_router
from .live import build_live_router
from .services import HostContext, OnlineServiceProtocol

__all__ = ["create_app", "create_host_app", "HostApp", "DataPlane", "DATA_PLANE_PREFIXES"]

log = logging.getLogger("toolkit.host")


def _error(err: ToolkitError) -> JSONResponse:
    headers = {}
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return JSONResponse(err.to_body(), status_code=err.status_code, headers=headers)


def create_app(ctx: HostContext, admin_token: str, request_shutdown: Callable[[], None] = lambda: None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.settings.started_at = ctx.settings.started_at or time.time()
        for name in ("online", "batch"):
            service = getattr(ctx, name)
            if service is not None:
                await service.start()
        ctx.event("HostStarted", f"host {__version__} listening on {ctx.settings.url}")
        try:
            yield
        finally:
            for name in ("batch", "online"):
                service = getattr(ctx, name)
                if service is not None:
                    try:
                        await service.stop()
                    except Exception:
                        log.exception("stopping the %s service failed", name)
            ctx.event("HostStopped", "host stopped")

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
    app.state.admin_token = admin_token
    app.state.request_shutdown = request_shutdown

    @app.exception_handler(ToolkitError)
    async def toolkit_error(request: Request, err: ToolkitError) -> JSONResponse:
        return _error(err)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{loc or '(body)'}: {e.get('msg', 'invalid')}")
        return JSONResponse({"error_code": "InvalidSpec", "message": "; ".join(parts)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(err.status_code, "HTTPError")
        message = f"no route {request.method} {request.url.path}" if err.status_code in (404, 405) else str(err.detail)
        return JSONResponse({"error_code": code, "message": message}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(HostError(f"internal error: {type(err).__name__}: {err}"))

    @app.get("/api/v1/health", tags=["host"], summary="Liveness of the host (no token needed)")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    app.include_router(build_router())
    app.include_router(build_live_router())
    return app


# The data plane's paths; everything else belongs to the control plane.
DATA_PLANE_PREFIXES = ("/endpoints/", "/v2/", "/metrics")


class DataPlane:
    """The online data plane as one ASGI app: scoring paths go to the gateway's raw handler
    before any routing (the hot path); the rest (swagger, V2 metadata, /metrics) to a small
    Starlette app of the gateway's routes."""

    def __init__(self, online: OnlineServiceProtocol, lifespan: Any = None) -> None:
        self.scoring = online.scoring_app
        self.routes = Starlette(routes=online.routes(), lifespan=lifespan, exception_handlers={
            ToolkitError: _toolkit_error, StarletteHTTPException: _not_found, Exception: _unexpected,
        })

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            score = self.scoring(scope["path"])
            if score is not None:
                await score(scope, receive, send)
                return
        await self.routes(scope, receive, send)


async def _toolkit_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, ToolkitError)
    return _error(err)


async def _not_found(request: Request, err: Exception) -> JSONResponse:
    status = getattr(err, "status_code", 404)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(status, "HTTPError")
    return JSONResponse({"error_code": code, "message": f"no route {request.method} {request.url.path}"},
                        status_code=status)


async def _unexpected(request: Request, err: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(HostError(f"internal error: {type(err).__name__}: {err}"))


class HostApp:
    """Sends data-plane requests straight to the :class:`DataPlane`, the rest to FastAPI.

    Scoring is the hot path: matched after ~30 control-plane routes, route matching alone was a
    quarter of the host's CPU per request.
    """

    def __init__(self, control: FastAPI, data: DataPlane | None) -> None:
        self.control = control
        self.data = data
        self.state = control.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.data is not None and scope["type"] == "http" and scope["path"].startswith(DATA_PLANE_PREFIXES):
            await self.data(scope, receive, send)
        else:
            await self.control(scope, receive, send)


def create_host_app(ctx: HostContext, admin_token: str, request_shutdown: Callable[[], None] = lambda: None) -> HostApp:
    """The ASGI app the host serves: control plane plus (if available) the online data plane."""
    control = create_app(ctx, admin_token, request_shutdown)
    return HostApp(control, DataPlane(ctx.online) if ctx.online is not None else None)
