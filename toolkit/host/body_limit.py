"""A size limit on control-plane request bodies.

FastAPI reads a body whole before any dependency runs, the admin-token check included, so without
a limit any local process could make the host buffer gigabytes.  Specs, traffic tables and job
requests are a few kilobytes; 4 MiB leaves room for large tag or environment tables.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ..errors import ClientDisconnected, PayloadTooLarge
from ..runtime.body import read_body

__all__ = ["ControlBodyLimit", "MAX_CONTROL_BODY_BYTES"]

MAX_CONTROL_BODY_BYTES = 4 * 1024 * 1024


def _too_large(limit: int) -> str:
    return (f"the request body is larger than {limit // (1024 * 1024)} MiB; "
            "a control-plane request is a small JSON document")


class ControlBodyLimit:
    """ASGI middleware: 413 for a declared ``Content-Length`` over the limit (nothing is read), and
    for a streamed body as soon as it passes the limit.

    The body is read with the same bounded reader as the data plane's (``runtime.body.read_body``),
    then handed to the app whole; the app's later ``receive`` calls go to the client (disconnects).
    """

    def __init__(self, app: Any, max_bytes: int = MAX_CONTROL_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"").strip()
        if declared and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.max_bytes)
        except ClientDisconnected:
            return  # nobody is left to answer
        if body is None:
            await self._refuse(scope, receive, send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        # Connection: close, because the rest of an oversized body is never read.
        refusal = PayloadTooLarge(_too_large(self.max_bytes))
        await JSONResponse(refusal.to_body(), status_code=refusal.status_code, headers={"connection": "close"})(
            scope, receive, send)
