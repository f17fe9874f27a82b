"""Private Unix sockets for instances: only the host's own user can reach a model instance.

An instance listens on a Unix socket and trusts whoever connects (the gateway in front of it
does auth, throttling, metrics and the body limit).  So three layers keep other local users out:

* the socket lives in a folder only the owner can enter (``endpoints/run``, 0700, or a private
  short folder under the temp dir when the workspace path is too long for ``sun_path``),
* the socket file itself is 0600 (uvicorn would make it 0666; we bind it ourselves),
* each accepted connection's peer credentials (Linux ``SO_PEERCRED``) are checked, and a
  connection from another uid gets a 403 and is closed before any request is read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import stat
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = [
    "UDS_MAX",
    "socket_dir",
    "ensure_private_dir",
    "bind_private",
    "peer_uid",
    "same_user_only",
]

UDS_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_REFUSAL_LOG_EVERY_S = 10.0  # an attacker looping on connect must not fill the instance log


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or check an existing one is ours and private (repairing its mode).

    Raises ``PermissionError`` when the folder belongs to another user: a folder someone else
    made at a predictable path under /tmp must never hold our sockets.
    """
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a folder owned by this user (uid {os.getuid()}); remove it")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def socket_dir(run_dir: Path, sample_name: str = "0123456789ab.sock") -> Path:
    """The private folder for the instance sockets of a workspace whose run folder is ``run_dir``.

    ``run_dir`` itself when a socket path in it fits ``sun_path``; otherwise (deep workspace
    folders, such as pytest's) a short per-user, per-workspace folder in the temp dir.
    """
    if len(str(run_dir / sample_name)) <= UDS_MAX:
        return ensure_private_dir(run_dir)
    tag = hashlib.sha1(str(run_dir).encode()).hexdigest()[:8]
    short = Path(tempfile.gettempdir()) / f"ept-{os.getuid()}-{tag}"
    try:
        return ensure_private_dir(short)
    except PermissionError:
        # Squatted by another user: a fresh random folder (mkdtemp makes it 0700, ours).
        return Path(tempfile.mkdtemp(prefix=f"ept-{os.getuid()}-"))


def bind_private(path: Path, backlog: int = 2048) -> socket.socket:
    """A listening Unix socket at ``path`` that only this user can connect to (mode 0600).

    The mode is set between ``bind`` and ``listen``: until ``listen`` nobody can connect, so
    there is no moment where a wider mode is usable.
    """
    if path.is_socket():  # a stale socket of a previous instance
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def peer_uid(transport: asyncio.BaseTransport) -> int | None:
    """The uid of the process at the other end of a Unix-socket transport (None if unknown)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None  # not Linux: the private folder and 0600 socket are the protection
    sock = transport.get_extra_info("socket")
    if sock is None or getattr(sock, "family", None) != socket.AF_UNIX:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return None
    return _UCRED.unpack(raw)[1]


_FORBIDDEN_BODY = json.dumps({
    "error_code": "Forbidden",
    "message": "this instance only accepts connections from its own user; send requests to the "
               "endpoint's URL on the host",
}).encode()
_FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_FORBIDDEN_BODY)).encode() + b"\r\n\r\n" + _FORBIDDEN_BODY
)


def same_user_only(protocol_class: type[Any]) -> type[Any]:
    """``protocol_class`` (a uvicorn HTTP protocol) refusing connections from other uids.

    The check runs in ``connection_made``, before the HTTP parser sees a byte: the refused
    peer gets a fixed 403 and the connection is closed; the app is never called.
    """
    owner = os.getuid()
    last_logged = [0.0, 0]  # time of the last log line, refusals since

    class SameUserProtocol(protocol_class):  # type: ignore[misc, valid-type]
        _refused = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            uid = peer_uid(transport)
            if uid is not None and uid != owner:
                self._refused = True
                _log_refusal(uid, last_logged)
                transport.write(_FORBIDDEN)  # type: ignore[attr-defined]
                transport.close()
                return
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:  # never set up: nothing of the parent's to tear down
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)

        def eof_received(self) -> Any:
            if self._refused:
                return None
            return super().eof_received()

    SameUserProtocol.__name__ = SameUserProtocol.__qualname__ = f"SameUser{protocol_class.__name__}"
    return SameUserProtocol


def _log_refusal(uid: int, last_logged: list[Any]) -> None:
    last_logged[1] += 1
    now = time.monotonic()
    if now - last_logged[0] >= _REFUSAL_LOG_EVERY_S:
        n = last_logged[1]
        more = f" ({n} refused since the last such line)" if n > 1 else ""
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} refused a connection from uid {uid}: "
              f"not this instance's user{more}", file=sys.stderr, flush=True)
        last_logged[0], last_logged[1] = now, 0
