"""Endpoint credentials at rest: sealed with Fernet under a key file kept beside the database.

Every endpoint key and token-signing secret is stored in ``state.db`` as ``fernet:<token>``
(AES-128-CBC + HMAC-SHA256, from the ``cryptography`` package), and the Fernet key lives in
``endpoints/secrets.key`` (mode 0600).  A copy of the database alone (a backup, a file shared
by mistake) therefore gives no working keys; the host, which can read both files, opens them
for ``get-credentials`` and for checking requests.

Losing ``secrets.key`` loses the stored keys (not the endpoints): the host then serves those
endpoints as having no credentials, and ``regenerate-keys`` makes new ones.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import SecretUnreadable, ToolkitError

__all__ = ["SecretBox", "SEALED_PREFIX", "KEY_FILE_NAME"]

SEALED_PREFIX = "fernet:"
KEY_FILE_NAME = "secrets.key"


class SecretBox:
    """Seals and opens short secrets (keys, token-signing secrets) with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def at(cls, key_file: Path) -> "SecretBox":
        """The box of ``key_file``, creating the key (mode 0600) if the file does not exist."""
        key_file = Path(key_file)
        try:
            key = _read_key(key_file)
        except FileNotFoundError:
            key = _create_key(key_file)
        try:
            return cls(key)
        except ValueError:
            raise ToolkitError(
                f"{key_file} is not a valid key file (it must hold one Fernet key: 44 URL-safe base64 "
                "characters). Restore it from a backup; or move it aside, start the host, and run "
                "`endpoints online-endpoint regenerate-keys` for each endpoint"
            ) from None

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(SEALED_PREFIX)

    def seal(self, value: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(value.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The plain value of ``stored`` (a value stored before sealing existed passes through)."""
        if not self.is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX):].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretUnreadable("a stored secret does not open with this secrets.key") from None


def _read_key(key_file: Path) -> bytes:
    st = os.stat(key_file)
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.chmod(key_file, 0o600)  # repair a copy restored with a loose mode
    return key_file.read_bytes().strip()


def _create_key(key_file: Path) -> bytes:
    """Write a new key atomically: two processes racing here end up with the same key."""
    key = Fernet.generate_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, key_file)  # fails if another process created it first: use theirs
        except FileExistsError:
            return _read_key(key_file)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return key
