"""One exception hierarchy for the whole toolkit.

Every error carries an ``error_code`` (stable, machine-readable), a human ``message`` and the
HTTP status the host answers with.  The SDK turns a host error body back into the same class,
so ``except NotFound`` works the same in-process and over HTTP.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ToolkitError",
    "InvalidSpec",
    "InvalidInput",
    "Unauthorized",
    "NotFound",
    "Conflict",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "RequestTimeout",
    "TooManyRequests",
    "ModelError",
    "Unavailable",
    "HostError",
    "HostNotRunning",
    "HostTimeout",
    "NotAvailableYet",
    "DeploymentFailed",
    "MethodNotAllowed",
    "SecretUnreadable",
    "ClientDisconnected",
    "Interrupted",
    "UpstreamError",
    "error_from_body",
]


class ToolkitError(Exception):
    """Base class of every error the toolkit raises on purpose."""

    error_code = "ToolkitError"
    status_code = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return self.message


class InvalidSpec(ToolkitError):
    """A spec (YAML, JSON or pydantic) breaks a rule; the message names the field."""

    error_code = "InvalidSpec"
    status_code = 400


class InvalidInput(ToolkitError):
    """A scoring request body is malformed or does not match the model's signature."""

    error_code = "InvalidInput"
    status_code = 400


class Unauthorized(ToolkitError):
    error_code = "Unauthorized"
    status_code = 401


class NotFound(ToolkitError):
    error_code = "NotFound"
    status_code = 404


class RequestTimeout(ToolkitError):
    error_code = "RequestTimeout"
    status_code = 408


class Conflict(ToolkitError):
    error_code = "Conflict"
    status_code = 409


class PayloadTooLarge(ToolkitError):
    error_code = "PayloadTooLarge"
    status_code = 413


class UnsupportedMediaType(ToolkitError):
    error_code = "UnsupportedMediaType"
    status_code = 415


class ModelError(ToolkitError):
    """The model (or scoring script) raised while predicting."""

    error_code = "ModelError"
    status_code = 424


class TooManyRequests(ToolkitError):
    error_code = "TooManyRequests"
    status_code = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class HostError(ToolkitError):
    """The host failed in a way that is not the caller's fault."""

    error_code = "HostError"
    status_code = 500


class DeploymentFailed(ToolkitError):
    """A deployment (or job) ended in the Failed state; the message is the reason recorded."""

    error_code = "DeploymentFailed"
    status_code = 500


class NotAvailableYet(ToolkitError):
    """A verb of the contract whose behaviour is not built yet."""

    error_code = "NotAvailableYet"
    status_code = 501


class Unavailable(ToolkitError):
    """No ready instance can take the request right now."""

    error_code = "Unavailable"
    status_code = 503


class HostNotRunning(ToolkitError):
    error_code = "HostNotRunning"
    status_code = 503


class HostTimeout(ToolkitError):
    """The host did not answer within the client's timeout (connect, read, write or pool)."""

    error_code = "HostTimeout"
    status_code = 504


class MethodNotAllowed(ToolkitError):
    """A data-plane route called with a method it does not take (answered with an Allow header)."""

    error_code = "MethodNotAllowed"
    status_code = 405

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class SecretUnreadable(ToolkitError):
    """A sealed value does not open with this key file (it was replaced or lost)."""

    error_code = "SecretUnreadable"
    status_code = 409


class ClientDisconnected(ToolkitError):
    """The caller went away before its request body arrived; nobody is left to answer."""

    error_code = "ClientDisconnected"
    status_code = 499


class Interrupted(ToolkitError):
    """The user pressed Ctrl-C while the CLI followed something, after it said how to pick it up again.

    The CLI exits 130 without another word; the thing followed (a job, a rollout) goes on in the host.
    """

    error_code = "Interrupted"
    status_code = 499

    def __init__(self, message: str = "interrupted", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class UpstreamError(ToolkitError, ConnectionError):
    """The gateway could not reach an instance, or the connection broke before a whole answer.

    Also a :class:`ConnectionError`, so code that handles socket failures handles it too."""

    error_code = "UpstreamError"
    status_code = 502


_BY_CODE: dict[str, type[ToolkitError]] = {
    cls.error_code: cls
    for cls in (
        ToolkitError, InvalidSpec, InvalidInput, Unauthorized, NotFound, Conflict,
        PayloadTooLarge, UnsupportedMediaType, RequestTimeout, TooManyRequests, ModelError,
        Unavailable, HostError, HostNotRunning, HostTimeout, NotAvailableYet, DeploymentFailed,
    )
}
_BY_STATUS: dict[int, type[ToolkitError]] = {
    400: InvalidInput, 401: Unauthorized, 404: NotFound, 408: RequestTimeout, 409: Conflict,
    413: PayloadTooLarge, 415: UnsupportedMediaType, 424: ModelError, 429: TooManyRequests,
    501: NotAvailableYet, 503: Unavailable,
}


def error_from_body(status: int, body: Any) -> ToolkitError:
    """Rebuild the exception a host response describes (used by the SDK)."""
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or HostError
    message = message or f"HTTP {status}"
    details = body.get("details") if isinstance(body, dict) else None
    if cls is TooManyRequests:
        return TooManyRequests(message, details=details)
    err = cls(message, details=details)
    return err
