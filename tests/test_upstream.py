"""The gateway's instance client against real Unix-socket servers (uvicorn, and raw sockets for
the failure cases a real instance cannot be made to produce on demand)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import uvicorn

from toolkit.errors import UpstreamError
from toolkit.online.upstream import Upstream


def _sock_path() -> str:
    return str(Path(tempfile.mkdtemp(prefix="up-")) / "s.sock")


async def _echo_app(scope, receive, send):  # a minimal ASGI app, served by uvicorn
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    if scope["path"] == "/slow":
        await asyncio.sleep(0.5)
    headers = dict(scope["headers"])
    out = b"%s %s %s %d" % (scope["method"].encode(), scope["path"].encode(), headers.get(b"x-request-id", b"-"), len(body))
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"text/plain"), (b"x-batch-size", b"3")]})
    await send({"type": "http.response.body", "body": out})


async def _with_uvicorn(path: str, fn):
    server = uvicorn.Server(uvicorn.Config(_echo_app, uds=path, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):  # a server that cannot start fails the test instead of hanging it
        while not server.started:
            if task.done():
                task.result()  # serve() ended early: raise what stopped it
                raise AssertionError("uvicorn stopped before it started listening")
            await asyncio.sleep(0.01)
    try:
        return await fn()
    finally:
        server.should_exit = True
        await task


def test_requests_reuse_connections_and_parse_answers():
    path = _sock_path()

    async def go():
        up = Upstream(path, limit=4)
        replies = []
        for i in range(5):
            replies.append(await up.request("POST", "/score", b"x" * i, {"X-Request-Id": f"r{i}"}))
        assert up.stats() == {"open": 1, "idle": 1}  # one keep-alive connection served all five
        many = await asyncio.gather(*(up.request("GET", "/health") for _ in range(10)))
        assert up.stats()["idle"] <= 4  # at most `limit` idle connections are kept
        await up.close()
        return replies, many

    replies, many = asyncio.run(_with_uvicorn(path, go))
    assert [r.status for r in replies] == [201] * 5
    assert replies[3].body == b"POST /score r3 3"
    assert replies[0].header(b"content-type") == "text/plain"
    assert replies[0].header(b"x-batch-size") == "3"
    assert replies[0].header(b"x-missing") is None
    assert {r.body for r in many} == {b"GET /health - 0"}


def test_cancelled_request_drops_its_connection():
    path = _sock_path()

    async def go():
        up = Upstream(path)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await up.request("GET", "/slow")
        assert up.stats() == {"open": 0, "idle": 0}  # its late answer can never be read as another's
        reply = await up.request("GET", "/fast")
        await up.close()
        return reply

    assert asyncio.run(_with_uvicorn(path, go)).body == b"GET /fast - 0"


def test_connection_failures_raise_upstream_error():
    path = _sock_path()

    async def go():
        up = Upstream(path)
        with pytest.raises(UpstreamError, match="cannot connect"):
            await up.request("GET", "/")  # nothing listens yet

        async def half_answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(half_answer, path)
        async with server:
            with pytest.raises(UpstreamError, match="closed the connection"):
                await up.request("GET", "/")
        await up.close()
        with pytest.raises(UpstreamError, match="closed"):
            await up.request("GET", "/")

    asyncio.run(go())


def test_header_values_cannot_inject_lines():
    async def go():
        up = Upstream(_sock_path())
        with pytest.raises(ValueError, match="line break"):
            await up.request("GET", "/", None, {"X-Request-Id": "a\r\nX-Evil: 1"})

    asyncio.run(go())
