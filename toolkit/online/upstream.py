"""A lean HTTP/1.1 client for the gateway's hop to an instance over its Unix socket.

The hop is the hot path of every prediction, and both ends are ours: the instance always answers
with ``Content-Length``, never with ``Transfer-Encoding``, never with a redirect or a cookie.  A
general client (aiohttp) spends most of its per-request time on what this hop never needs
(header multidicts, tracing hooks, timers, response objects); measured on the benchmark's
RandomForest at concurrency 32, that was about a third of the host's CPU per request.  So this
module keeps only what the hop needs: a pool of keep-alive connections per instance, one request
at a time per connection, responses parsed by ``httptools`` (the C parser uvicorn uses).

A connection that fails before a whole answer arrived raises :class:`UpstreamError` and is
dropped; the gateway decides whether another instance may take the request.  A request that is
cancelled (timeout, client gone) closes its connection, because a late answer would otherwise be
read as the answer to the next request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import httptools

from ..errors import UpstreamError

__all__ = ["Upstream", "UpstreamReply"]


class UpstreamReply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers   # lower-case names; the last value of a repeated header
        self.body = body

    def header(self, name: bytes) -> str | None:
        v = self.headers.get(name)
        return v.decode("latin-1") if v is not None else None


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``exchange`` sends a request and waits for its whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[UpstreamReply] | None = None
        self.closed = False
        self._headers: dict[bytes, bytes] = {}
        self._chunks: list[bytes] = []

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(UpstreamError(f"malformed answer from the instance: {err}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamError("the instance closed the connection before answering"))

    # --- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._headers = {}
        self._chunks = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        reply = UpstreamReply(self.parser.get_status_code(), self._headers, body)
        if not self.parser.should_keep_alive():
            self.close()
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(reply)

    # --- use ---------------------------------------------------------------------------------
    def _fail(self, err: Exception) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(err)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes) -> UpstreamReply:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def _request_bytes(method: str, path: str, body: bytes | None, headers: dict[str, str] | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\nHost: instance\r\n"]
    if headers:
        for k, v in headers.items():
            if "\r" in v or "\n" in v:  # never let a caller's value start a header of its own
                raise ValueError(f"header {k} contains a line break")
            lines.append(f"{k}: {v}\r\n")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("latin-1")
    return head + body if body else head


class Upstream:
    """Keep-alive connections to one instance's Unix socket (at most ``limit`` idle ones kept)."""

    def __init__(self, path: str, limit: int = 64) -> None:
        self.path = path
        self.limit = limit
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()
        self.closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_unix_connection(_Connection, self.path)
        except OSError as err:
            raise UpstreamError(f"cannot connect to the instance: {err.strerror or err}") from None
        self._open.add(conn)
        return conn

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> UpstreamReply:
        if self.closed:
            raise UpstreamError("the instance's connection pool is closed (restarting)")
        data = _request_bytes(method, path, body, headers)
        conn = None
        while self._idle:
            c = self._idle.pop()  # the most recently used: the least likely to have gone stale
            if not c.closed:
                conn = c
                break
            self._open.discard(c)
        if conn is None:
            conn = await self._connect()
        try:
            reply = await conn.exchange(data)
        except BaseException:
            # Failed or cancelled mid-exchange: the connection's state is unknown, drop it.
            conn.close()
            self._open.discard(conn)
            raise
        if conn.closed or self.closed or len(self._idle) >= self.limit:
            conn.close()
            self._open.discard(conn)
        else:
            self._idle.append(conn)
        return reply

    async def close(self) -> None:
        self.closed = True
        for c in list(self._open):
            c.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run connection_lost

    def stats(self) -> dict[str, Any]:
        return {"open": len(self._open), "idle": len(self._idle)}
