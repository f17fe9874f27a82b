"""The SDK's HTTP client for a host: admin-token auth and errors rebuilt as toolkit exceptions."""

from __future__ import annotations

from typing import Any

import httpx

from .errors import HostNotRunning, error_from_body

__all__ = ["HostClient"]


class HostClient:
    """A thin httpx wrapper: JSON in, JSON out, host errors raised as the matching exception."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._admin = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {admin_token}"},
        )
        # The data plane uses endpoint credentials, never the admin token.
        self._data = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._admin.close()
        self._data.close()

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

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            resp = self._admin.request(method, f"/api/v1{path}", json=json, params=params)
        except httpx.ConnectError:
            raise HostNotRunning(f"cannot reach the host at {self.base_url}; is it running? (`endpoints up`)") from None
        self._raise_for(resp)
        return resp.json()

    def score(
        self, path: str, content: bytes, content_type: str, headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """POST a scoring request on the data plane; errors raise, the response is returned."""
        hdrs = {"Content-Type": content_type, **(headers or {})}
        try:
            resp = self._data.post(path, content=content, headers=hdrs,
                                   timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.ConnectError:
            raise HostNotRunning(f"cannot reach the host at {self.base_url}; is it running? (`endpoints up`)") from None
        self._raise_for(resp)
        return resp
