"""Traffic rules checked as the user types, before anything is sent to the host.

The host enforces the same rules (``toolkit.specs.OnlineEndpoint``); checking them here lets the
editor say what is wrong on every keystroke instead of after a round trip.
"""

from __future__ import annotations

__all__ = ["parse_percent", "traffic_problems"]


def parse_percent(text: str, field: str) -> tuple[int | None, str | None]:
    """(value, None) for a whole number 0..100 (blank is 0), else (None, the reason)."""
    text = text.strip()
    if not text:
        return 0, None
    try:
        value = int(text)
    except ValueError:
        return None, f"{field}: {text!r} is not a whole number"
    if not 0 <= value <= 100:
        return None, f"{field}: must be between 0 and 100, got {value}"
    return value, None


def traffic_problems(traffic: dict[str, int], mirror: dict[str, int]) -> list[str]:
    """Why this traffic split cannot be applied (empty when it can)."""
    problems: list[str] = []
    total = sum(traffic.values())
    if total not in (0, 100):
        problems.append(f"traffic sums to {total}%; it must sum to 0 or 100")
    mirrored = {name: pct for name, pct in mirror.items() if pct}
    if len(mirrored) > 1:
        problems.append(f"mirror: only one deployment may be mirrored, got {', '.join(sorted(mirrored))}")
    for name, pct in sorted(mirrored.items()):
        if pct > 50:
            problems.append(f"mirror {name}: at most 50%, got {pct}%")
        if traffic.get(name, 0) > 0:
            problems.append(f"mirror {name}: only a deployment without live traffic can be mirrored "
                            f"({name} has {traffic[name]}%)")
    return problems
