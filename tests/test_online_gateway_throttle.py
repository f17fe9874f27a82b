"""Throttling at the gateway: 429 with Retry-After, 408, 413 (Content-Length and streamed)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Iterator

import aiohttp
import pytest

from test_online_gateway_support import OnlineHost, auth, fire, make_home, write_script

pytestmark = pytest.mark.timeout(300)

SLOW = """
import time

def run(data):
    # Plain JSON that is not an MLflow format arrives as is.
    time.sleep(float(data.get("sleep", 0.2)))
    return {"echo": data.get("n")}
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[OnlineHost]:
    base = tmp_path_factory.mktemp("thr")
    h = OnlineHost(make_home(base / "home", demo_registry)).start()
    h.secrets = h.create_endpoint("slow")  # type: ignore[attr-defined]
    code = write_script(base / "code", SLOW)
    state = h.deploy("slow", "one", code_configuration=code, request_settings={
        "max_concurrent_requests_per_instance": 1, "max_queue_wait_ms": 300, "request_timeout_ms": 1500,
        "max_body_bytes": 4096})
    assert state == "Succeeded", h.state("slow", "one")
    h.set_traffic("slow", {"one": 100})
    try:
        yield h
    finally:
        h.stop()


def test_flood_gets_429_with_retry_after_and_no_5xx(host: OnlineHost) -> None:
    n = 40

    async def flood() -> list[tuple[int, dict[str, str], bytes, int]]:
        async with aiohttp.ClientSession() as s:
            async def one(i: int) -> tuple[int, dict[str, str], bytes, int]:
                data = json.dumps({"sleep": 0.2, "n": i}).encode()
                async with s.post(f"{host.url}/endpoints/slow/score", data=data,
                                  headers={**auth(host.secrets), "Content-Type": "application/json"}) as r:  # type: ignore[attr-defined]
                    return r.status, dict(r.headers), await r.read(), i
            return await asyncio.gather(*(one(i) for i in range(n)))

    results = asyncio.run(flood())
    codes = Counter(status for status, _, _, _ in results)
    assert codes[429] > 0 and codes[200] > 0, codes
    assert set(codes) <= {200, 429}, codes            # never a 5xx, never a pile-up timeout
    for status, headers, content, i in results:
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
            assert json.loads(content)["error_code"] == "TooManyRequests"
        else:
            assert json.loads(content) == {"echo": i}  # accepted ones are answered correctly
    st = host.stats("slow")["deployments"]["one"]
    assert st["throttled"] >= codes[429]


def test_request_timeout_is_408_json(host: OnlineHost) -> None:
    r = fire(f"{host.url}/endpoints/slow/score", 1, body=json.dumps({"sleep": 3}).encode(),
             headers=auth(host.secrets))[0]  # type: ignore[attr-defined]
    assert r.status == 408 and r.json()["error_code"] == "RequestTimeout", r
    assert r.headers["x-deployment"] == "one"
    # The runaway prediction does not leave the (only) instance stuck: the next one is answered.
    r = fire(f"{host.url}/endpoints/slow/score", 1, body=json.dumps({"sleep": 0, "n": 7}).encode(),
             headers=auth(host.secrets))[0]  # type: ignore[attr-defined]
    assert r.status == 200 and r.json() == {"echo": 7}, r


def test_body_over_max_body_bytes_is_413(host: OnlineHost) -> None:
    big = json.dumps({"pad": "x" * 5000}).encode()
    r = fire(f"{host.url}/endpoints/slow/score", 1, body=big, headers=auth(host.secrets))[0]  # type: ignore[attr-defined]
    assert r.status == 413 and r.json()["error_code"] == "PayloadTooLarge"

    async def chunked() -> tuple[int, bytes]:
        async def gen():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * 1000

        async with aiohttp.ClientSession() as s:
            async with s.post(f"{host.url}/endpoints/slow/score", data=gen(),
                              headers={**auth(host.secrets), "Content-Type": "application/json"}) as r:  # type: ignore[attr-defined]
                return r.status, await r.read()

    status, content = asyncio.run(chunked())
    assert status == 413 and json.loads(content)["error_code"] == "PayloadTooLarge"
