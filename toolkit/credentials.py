"""Endpoint credentials: two keys per endpoint and a secret that signs its tokens, and the tokens.

Minting lives here, apart from the gateway that checks them (:mod:`toolkit.online.auth`), so the
control plane can make and renew credentials without importing the data plane.  Tokens are JWTs
(PyJWT, HS256) signed with a per-endpoint secret, so a token of one endpoint never verifies on
another, and ``regenerate-keys --key-type token`` (a new secret) revokes every token issued so
far at once.  At rest the secrets are sealed by :mod:`toolkit.secretbox`.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from typing import Any, Mapping

import jwt

__all__ = [
    "new_secrets", "new_key", "new_token_secret", "regenerated", "issue_token",
    "TOKEN_TTL_S", "KEY_TYPES", "ISSUER",
]

TOKEN_TTL_S = 3600
ISSUER = "endpoints-toolkit"


KEY_TYPES = ("primary", "secondary", "token")  # what regenerate-keys --key-type can renew


def new_key() -> str:
    return secrets.token_urlsafe(32)


def new_token_secret() -> str:
    return secrets.token_urlsafe(48)


def new_secrets() -> dict[str, str]:
    return {"primary_key": new_key(), "secondary_key": new_key(), "token_secret": new_token_secret()}


def regenerated(current: Mapping[str, str] | None, key_type: str) -> dict[str, str]:
    """The endpoint's secrets with the ``key_type`` one renewed (``token``: the token-signing
    secret, which revokes every token issued with the old one).  With no usable current secrets
    (none stored, or they no longer open), all of them are new."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"key_type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    if current is None:
        return new_secrets()
    row = {k: current[k] for k in ("primary_key", "secondary_key", "token_secret")}
    if key_type == "token":
        row["token_secret"] = new_token_secret()
    else:
        row[f"{key_type}_key"] = new_key()
    return row


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_token(endpoint: str, token_secret: str, ttl_s: int = TOKEN_TTL_S, now: float | None = None) -> dict[str, Any]:
    """An access token for ``endpoint`` in Azure's ``get-credentials`` shape."""
    now = time.time() if now is None else now
    exp = int(now + ttl_s)
    token = jwt.encode(
        {"iss": ISSUER, "aud": endpoint, "sub": endpoint, "iat": int(now), "exp": exp},
        token_secret, algorithm="HS256",
    )
    return {
        "accessToken": token,
        "tokenType": "Bearer",
        "expiryTimeUtc": _iso(exp),
        "refreshAfterTimeUtc": _iso(now + ttl_s / 2),
    }
