"""Which deployment serves a request: the traffic table, the deployment header, the mirror.

A :class:`RouteTable` is built once per endpoint change (never per request) and is immutable, so
the gateway reads it without locks and a change swaps in a whole new table atomically.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["RouteTable", "DEPLOYMENT_HEADERS"]

# Ours first, then Azure's name for the same thing.
DEPLOYMENT_HEADERS = ("x-deployment", "azureml-model-deployment")


@dataclass(frozen=True)
class RouteTable:
    endpoint: str
    auth_mode: str = "key"
    secrets: Mapping[str, str] | None = field(default=None, repr=False)
    traffic: Mapping[str, int] = field(default_factory=dict)
    mirror: str | None = None
    mirror_share: float = 0.0
    unhealthy: str = ""          # why deployments with traffic were left out (they failed)
    _names: tuple[str, ...] = field(default=(), repr=False)
    _cumulative: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    def build(cls, endpoint: str, spec: Mapping[str, Any], secrets: Mapping[str, str] | None,
              auth_mode: str | None = None, failed: Mapping[str, str] | None = None) -> "RouteTable":
        """``failed`` maps deployments that cannot serve to why: their share goes to the others,
        so one broken deployment does not fail a share of every caller's requests."""
        traffic = {k: int(v) for k, v in (spec.get("traffic") or {}).items()}
        failed = failed or {}
        names, cumulative, total = [], [], 0
        for name, pct in sorted(traffic.items()):
            if pct > 0 and name not in failed:
                total += pct
                names.append(name)
                cumulative.append(total)
        mirror, share = None, 0.0
        for name, pct in (spec.get("mirror_traffic") or {}).items():
            if int(pct) > 0:
                mirror, share = name, int(pct) / 100.0
        return cls(
            endpoint=endpoint, auth_mode=auth_mode or spec.get("auth_mode") or "key",
            secrets=dict(secrets) if secrets else None, traffic=traffic, mirror=mirror,
            mirror_share=share, _names=tuple(names), _cumulative=tuple(cumulative),
            unhealthy="; ".join(f"{n}: {failed[n]}" for n in sorted(traffic) if traffic[n] > 0 and n in failed),
        )

    @property
    def live(self) -> tuple[str, ...]:
        """Deployments with live traffic."""
        return self._names

    def pick(self, rnd: random.Random | None = None) -> str | None:
        """Weighted random choice by traffic; None when no deployment has traffic."""
        if not self._names:
            return None
        x = (rnd or random).random() * self._cumulative[-1]
        return self._names[bisect.bisect_right(self._cumulative, x)]

    def mirror_now(self, rnd: random.Random | None = None) -> str | None:
        """The mirror deployment if this weight-routed request should be copied to it."""
        if self.mirror is not None and (rnd or random).random() < self.mirror_share:
            return self.mirror
        return None

    def primary(self) -> str | None:
        """The deployment with the most traffic (swagger and V2 metadata describe its model)."""
        if not self._names:
            return None
        return max(self._names, key=lambda n: (self.traffic[n], n))
