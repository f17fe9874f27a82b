"""Request bodies over ASGI: read at most a limit, and undo a Content-Encoding.

The gateway (host side) and the instance both read bodies here, so a flood stops at the cap in
one place and both see a client that went away the same way (:class:`ClientDisconnected`).
"""

from __future__ import annotations

import zlib
from typing import Any, Awaitable, Callable

from ..errors import ClientDisconnected, InvalidInput, PayloadTooLarge, UnsupportedMediaType

__all__ = ["read_body", "decompress"]


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds ``limit`` bytes (a chunked upload has no
    declared size: stop at the cap instead of buffering a flood).  Raises
    :class:`ClientDisconnected` when the client goes away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientDisconnected("the client disconnected before sending the whole body")
        chunk = msg.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decompress(body: bytes, encoding: bytes, limit: int) -> bytes:
    """A gzip/deflate request body (tritonclient's request compression), at most ``limit`` bytes."""
    enc = encoding.decode("latin-1").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"unsupported Content-Encoding {enc!r}; send gzip, deflate or identity")
    d = zlib.decompressobj(47)  # 32 + 15: zlib or gzip header, detected
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as err:
        raise InvalidInput(f"the body is not valid {enc} data: {err}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the decompressed body exceeds {limit} bytes (max_body_bytes)")
    return out
