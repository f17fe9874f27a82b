"""Data-plane credential checks: a key or a token scoped to one endpoint, per request.

The credentials are minted by :mod:`toolkit.credentials`.  Keys are compared in constant time.
A token must carry an expiry (``exp``): one without it would never stop working, so it is refused.
"""

from __future__ import annotations

import hmac

import jwt

from ..credentials import ISSUER
from ..errors import Unauthorized

__all__ = ["verify"]


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
        jwt.decode(presented, secrets_row["token_secret"], algorithms=["HS256"], audience=endpoint, issuer=ISSUER,
                   options={"require": ["exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized(f"token for endpoint {endpoint!r} has expired; get a new one with get-credentials") from None
    except jwt.MissingRequiredClaimError as err:
        # Only a holder of the signing secret can make such a token, but it would never expire.
        raise Unauthorized(f"token for endpoint {endpoint!r} has no {err.claim!r} claim; tokens must expire: "
                           "get one with get-credentials") from None
    except jwt.InvalidTokenError:
        raise Unauthorized(f"invalid token for endpoint {endpoint!r}") from None
