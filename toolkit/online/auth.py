"""Data-plane credentials: two keys per endpoint, and signed tokens scoped to one endpoint.

Keys are compared in constant time.  Tokens are JWTs (PyJWT, HS256) signed with a per-endpoint
secret, so a token of one endpoint never verifies on another, and ``regenerate-keys --key-type
token`` (a new secret) revokes every token issued so far at once.  A token must carry an expiry
(``exp``): one without it would never stop working, so it is refused.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Mapping

import jwt

from ..errors import Unauthorized

__all__ = [
    "new_secrets", "new_key", "new_token_secret", "regenerated", "issue_token", "verify",
    "TOKEN_TTL_S", "KEY_TYPES",
]

TOKEN_TTL_S = 3600
_ISSUER = "endpoints-toolkit"


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
        {"iss": _ISSUER, "aud": endpoint, "sub": endpoint, "iat": int(now), "exp": exp},
        token_secret, algorithm="HS256",
    )
    return {
        "accessToken": token,
        "tokenType": "Bearer",
        "expiryTimeUtc": _iso(exp),
        "refreshAfterTimeUtc": _iso(now + ttl_s / 2),
    }


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing credential: send 'Authorization: Bearer <key or token>'")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key or token>'")
    return value.strip()


def verify(endpoint: str, auth_mode: str, authorization: str | None, secrets_row: dict[str, str] | None) -> None:
    """Raise :class:`Unauthorized` (with a reason, never the credential) unless allowed."""
    if auth_mode == "none":
        return
    presented = _bearer(authorization)
    if secrets_row is None:
        raise Unauthorized(f"endpoint {endpoint!r} has no credentials yet")
    if auth_mode == "key":
        ok = False
        for name in ("primary_key", "secondary_key"):
            # Compare against both keys every time, so timing does not tell which one matched.
            ok |= hmac.compare_digest(presented.encode(), secrets_row[name].encode())
        if not ok:
            raise Unauthorized(f"invalid key for endpoint {endpoint!r}")
        return
    try:
        jwt.decode(presented, secrets_row["token_secret"], algorithms=["HS256"], audience=endpoint, issuer=_ISSUER,
                   options={"require": ["exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized(f"token for endpoint {endpoint!r} has expired; get a new one with get-credentials") from None
    except jwt.MissingRequiredClaimError as err:
        # Only a holder of the signing secret can make such a token, but it would never expire.
        raise Unauthorized(f"token for endpoint {endpoint!r} has no {err.claim!r} claim; tokens must expire: "
                           "get one with get-credentials") from None
    except jwt.InvalidTokenError:
        raise Unauthorized(f"invalid token for endpoint {endpoint!r}") from None
