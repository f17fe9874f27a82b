"""What the gateway needs of the online service: a narrow, read-mostly view.

The gateway routes requests; the service owns deployments, route tables and instance processes.
:class:`GatewayBackend` is all the gateway may see of it, so the gateway can be read (and tested)
without the service's lifecycle code, and the service can change its internals freely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Protocol

if TYPE_CHECKING:
    from .metrics import Metrics
    from .router import RouteTable
    from .deployment import Deployment

__all__ = ["GatewayBackend"]


class GatewayBackend(Protocol):
    metrics: "Metrics"
    tables: "Mapping[str, RouteTable]"                 # endpoint -> its route table
    deployments: "Mapping[tuple[str, str], Deployment]"  # (endpoint, deployment) -> live deployment

    @property
    def startup_timeout_s(self) -> float:
        """How long an instance may take to start (a cold start's wait extends by it)."""

    def is_deploying(self, endpoint: str, name: str) -> bool:
        """A (re)deployment of ``endpoint/name`` is under way."""

    def cold_start(self, dep: "Deployment") -> bool:
        """Start an instance of a scaled-to-zero deployment; True when one is on its way."""

    def serving(self, endpoint: str, name: str) -> bool:
        """The deployment has a ready instance."""

    async def swagger_document(self, table: "RouteTable", dep: "Deployment") -> bytes:
        """The endpoint's OpenAPI document for ``dep``'s model."""
