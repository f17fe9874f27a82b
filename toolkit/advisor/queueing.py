"""M/M/c queueing: the chance a request waits, and how long, for a pool of identical instances."""

from __future__ import annotations

import math

__all__ = ["erlang_c", "wait_quantile"]

_INF = float("inf")


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``a`` = lambda/mu."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    b = 1.0  # Erlang B by the stable recurrence, then C from B
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho + rho * b)


def wait_quantile(c: int, lam: float, mu: float, q: float) -> float:
    """The q-quantile (0..1) of the waiting time in M/M/c, in the units of 1/mu."""
    if lam >= c * mu:
        return _INF
    pw = erlang_c(c, lam / mu)
    if pw <= 1 - q:
        return 0.0
    return math.log(pw / (1 - q)) / (c * mu - lam)
