"""The gateway's routes other than scoring: swagger.json, V2 metadata and health, /metrics.

A mixin of :class:`.gateway.Gateway` (which brings auth, routing and the hop to instances); kept
apart so the scoring hot path reads on its own.  Every answer carries ``X-Request-Id`` and
``X-Deployment`` (empty when no deployment is involved); V2 errors also carry ``"error"``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..errors import MethodNotAllowed, NotFound, ToolkitError, Unavailable
from ..runtime.protocol.v2 import v2_server_metadata
from .deployment import Deployment
from .metrics import CONTENT_TYPE_LATEST
from .router import RouteTable

if TYPE_CHECKING:
    from .backend import GatewayBackend
    from .upstream import UpstreamReply

__all__ = ["InfoRoutes", "MethodNotAllowed"]


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, headers=headers, media_type="application/json")


class _Answer(ToolkitError):
    """Internal: stop handling and answer with ``err`` (carries the chosen deployment).  Part of
    the one error tree, answering as ``err`` does; every handler catches it before ToolkitError."""

    def __init__(self, err: ToolkitError, deployment: str = "") -> None:
        super().__init__(err.message, details=err.details)
        self.error_code, self.status_code = err.error_code, err.status_code
        self.err = err
        self.deployment = deployment


class InfoRoutes:
    """Handlers for the data plane's non-scoring routes (see :meth:`.gateway.Gateway.routes`)."""

    if TYPE_CHECKING:
        svc: GatewayBackend
        metrics: Any

        def _request_id(self, request: Any) -> str: ...
        def _method(self, request: Any, allowed: str) -> None: ...
        def _table(self, endpoint: str, request: Any) -> RouteTable: ...
        def _error(self, err: ToolkitError, rid: str, deployment: str = "", v2: bool = False) -> Response: ...
        def _named(self, request: Any, version: str | None = None) -> str | None: ...
        def _unknown_deployment(self, e: str, named: str, version: str | None) -> NotFound: ...
        async def _forward(self, dep: Deployment, method: str, path: str, body: bytes | None,
                           content_type: str | None, rid: str, extra: dict[str, str] | None = None) -> UpstreamReply: ...

    # --- swagger and V2 metadata ---------------------------------------------------------
    def _described(self, table: RouteTable, request: Request, version: str | None = None) -> Deployment:
        name = self._named(request, version) or table.primary()
        if name is None:
            # No traffic yet: describe the only deployment if there is exactly one.
            names = [d for (e, d) in self.svc.deployments if e == table.endpoint]
            name = names[0] if len(names) == 1 else None
        dep = self.svc.deployments.get((table.endpoint, name)) if name else None
        if dep is None:
            if version is not None:
                raise _Answer(self._unknown_deployment(table.endpoint, version, version), version)
            raise _Answer(NotFound(f"online endpoint {table.endpoint!r} has no deployment to describe"
                                   + (f" named {name!r}" if name else "")), name or "")
        return dep

    async def swagger(self, request: Request) -> Response:
        rid = self._request_id(request)
        try:
            self._method(request, "GET")
            endpoint = request.path_params["endpoint"]
            table = self._table(endpoint, request)
            dep = self._described(table, request)
            doc = await self.svc.swagger_document(table, dep)
        except _Answer as ans:
            return self._error(ans.err, rid, ans.deployment)
        except ToolkitError as err:
            return self._error(err, rid)
        return Response(doc, media_type="application/json", headers={"X-Deployment": dep.name, "X-Request-Id": rid})

    async def v2_server(self, request: Request) -> Response:
        """``GET /v2``: server metadata (no credential, like the health routes)."""
        rid = self._request_id(request)
        try:
            self._method(request, "GET")
        except _Answer as ans:
            return self._error(ans.err, rid, v2=True)
        return _json_response(200, v2_server_metadata(__version__), {"X-Request-Id": rid, "X-Deployment": ""})

    async def v2_model(self, request: Request) -> Response:
        rid = self._request_id(request)
        version = request.path_params.get("version")
        dep_name = ""
        try:
            self._method(request, "GET")
            table = self._table(request.path_params["endpoint"], request)
            dep = self._described(table, request, version)
            dep_name = dep.name
            dep.admitted += 1
            try:
                reply = await self._forward(dep, "GET", "/v2/model", None, None, rid)
            finally:
                dep.admitted -= 1
        except _Answer as ans:
            return self._error(ans.err, rid, ans.deployment or dep_name, v2=True)
        except ToolkitError as err:
            return self._error(err, rid, dep_name, v2=True)
        content = reply.body
        if reply.status == 200:
            # The instance knows its deployment, not the endpoint the client addressed; the
            # endpoint's versions are its deployments (what /versions/{v}/... routes take).
            try:
                meta = json.loads(content)
                if isinstance(meta, dict):
                    meta["name"] = table.endpoint
                    meta["versions"] = sorted(d for (e, d) in self.svc.deployments if e == table.endpoint)
                    content = json.dumps(meta).encode()
            except ValueError:
                pass
        return Response(content, status_code=reply.status, media_type=reply.header(b"content-type") or "application/json",
                        headers={"X-Deployment": dep.name, "X-Request-Id": rid})

    async def v2_model_ready(self, request: Request) -> Response:
        rid = self._request_id(request)
        version = request.path_params.get("version")
        try:
            self._method(request, "GET")
            table = self._table(request.path_params["endpoint"], request)
            named = self._named(request, version)
            if named and (table.endpoint, named) not in self.svc.deployments:
                if version is not None:
                    raise _Answer(self._unknown_deployment(table.endpoint, named, version), named)
                raise _Answer(NotFound(f"online endpoint {table.endpoint!r} has no deployment {named!r}"), named)
            names = [named] if named else list(table.live)
            if not names:
                raise _Answer(NotFound(f"online endpoint {table.endpoint!r} has no deployment with traffic"))
            shown = named or table.primary() or names[0]
            not_ready = [n for n in names if not self.svc.serving(table.endpoint, n)]
            if not_ready:
                raise _Answer(Unavailable(f"not ready: {', '.join(sorted(not_ready))}"), shown)
        except _Answer as ans:
            return self._error(ans.err, rid, ans.deployment, v2=True)
        return _json_response(200, {"name": table.endpoint, "ready": True}, {"X-Request-Id": rid, "X-Deployment": shown})

    async def v2_live(self, request: Request) -> Response:
        rid = self._request_id(request)
        try:
            self._method(request, "GET")
        except _Answer as ans:
            return self._error(ans.err, rid, v2=True)
        return _json_response(200, {"live": True}, {"X-Request-Id": rid, "X-Deployment": ""})

    async def v2_ready(self, request: Request) -> Response:
        rid = self._request_id(request)
        try:
            self._method(request, "GET")
        except _Answer as ans:
            return self._error(ans.err, rid, v2=True)
        not_ready = [f"{e}/{d}" for e, t in self.svc.tables.items() for d in t.live if not self.svc.serving(e, d)]
        if not_ready:
            return self._error(Unavailable(f"not ready: {', '.join(sorted(not_ready))}"), rid, v2=True)
        return _json_response(200, {"ready": True}, {"X-Request-Id": rid, "X-Deployment": ""})

    async def prometheus(self, request: Request) -> Response:
        rid = self._request_id(request)
        try:
            self._method(request, "GET")
        except _Answer as ans:
            return self._error(ans.err, rid)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST,
                        headers={"X-Request-Id": rid, "X-Deployment": ""})
