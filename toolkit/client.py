"""The SDK's HTTP clients for a host: admin-token auth, errors rebuilt as toolkit exceptions.

``HostClient`` (sync, the ``Workspace``) and ``AsyncHostClient`` (async, the ``AsyncWorkspace``)
share one base, as httpx's ``Client`` and ``AsyncClient`` share ``BaseClient``: how a request is
built, how an error answer becomes the matching exception, and how a transport failure
(refused connection, timeout, broken connection) becomes a ``ToolkitError`` - never a raw httpx
exception.  Both run the same ``ApiCall`` descriptions (``toolkit.live``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from .errors import HostError, HostNotRunning, HostTimeout, ToolkitError, error_from_body

if TYPE_CHECKING:  # pragma: no cover
    from .live import ApiCall

__all__ = ["HostClient", "AsyncHostClient", "DEFAULT_TIMEOUT"]

T = TypeVar("T")
DEFAULT_TIMEOUT = 120.0


class _HostClientBase:
    """What the sync and async clients share: request building and error mapping."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._admin_headers = {"Authorization": f"Bearer {admin_token}"}

    @staticmethod
    def _admin_request(method: str, path: str, json: Any, params: dict[str, Any] | None,
                       timeout: float | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"method": method, "url": f"/api/v1{path}", "json": json,
                                  "params": {k: v for k, v in (params or {}).items() if v is not None} or None}
        if timeout is not None:
            kwargs["timeout"] = timeout
        return kwargs

    def _transport_error(self, err: httpx.RequestError, what: str) -> ToolkitError:
        """The toolkit exception for a request that got no HTTP answer."""
        if isinstance(err, httpx.TimeoutException):
            kind = type(err).__name__.replace("Timeout", " timeout").strip().lower()
            return HostTimeout(f"the host at {self.base_url} did not answer {what} in time ({kind}); "
                               "it may be overloaded, or pass a longer timeout")
        if isinstance(err, httpx.ConnectError):
            return HostNotRunning(f"cannot reach the host at {self.base_url}; is it running? (`endpoints up`)")
        return HostError(f"the connection to the host at {self.base_url} failed during {what}: "
                         f"{type(err).__name__}: {err or 'no detail'}")

    @staticmethod
    def _raise_for(resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        try:
            body = resp.json()
        except ValueError:
            body = {"message": resp.text[:500] or f"HTTP {resp.status_code}"}
        err = error_from_body(resp.status_code, body)
        if resp.status_code == 429:
            err.retry_after = float(resp.headers.get("retry-after", "1"))  # type: ignore[attr-defined]
        raise err

    @staticmethod
    def _json(resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise HostError(f"the host answered {what} with something that is not JSON: {resp.text[:200]!r}") from None


class HostClient(_HostClientBase):
    """Sync client: JSON in, JSON out, host errors raised as the matching exception."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(base_url, admin_token, timeout)
        self._admin = httpx.Client(base_url=self.base_url, timeout=timeout, headers=self._admin_headers)
        # The data plane uses endpoint credentials, never the admin token.
        self._data = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._admin.close()
        self._data.close()

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        what = f"{method} /api/v1{path}"
        try:
            resp = self._admin.request(**self._admin_request(method, path, json, params, timeout))
        except httpx.RequestError as err:
            raise self._transport_error(err, what) from None
        self._raise_for(resp)
        return self._json(resp, what)

    def run(self, call: "ApiCall[T]") -> T:
        """Send a described call and parse its answer."""
        return call.parse(self.call(call.method, call.path, params=call.params))

    def score(
        self, path: str, content: bytes, content_type: str, headers: dict[str, str] | None = None,
        timeout: float | None = None, *, raise_errors: bool = True,
    ) -> httpx.Response:
        """POST a scoring request on the data plane; error answers raise unless ``raise_errors=False``."""
        hdrs = {"Content-Type": content_type, **(headers or {})}
        try:
            resp = self._data.post(path, content=content, headers=hdrs,
                                   timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.RequestError as err:
            raise self._transport_error(err, f"POST {path}") from None
        if raise_errors:
            self._raise_for(resp)
        return resp


class AsyncHostClient(_HostClientBase):
    """Async client of the control plane, for UIs that poll from an event loop."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(base_url, admin_token, timeout)
        self._admin = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=self._admin_headers)

    async def aclose(self) -> None:
        await self._admin.aclose()

    async def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        what = f"{method} /api/v1{path}"
        try:
            resp = await self._admin.request(**self._admin_request(method, path, json, params, timeout))
        except httpx.RequestError as err:
            raise self._transport_error(err, what) from None
        self._raise_for(resp)
        return self._json(resp, what)

    async def run(self, call: "ApiCall[T]") -> T:
        return call.parse(await self.call(call.method, call.path, params=call.params))
