"""Prometheus durations (30s, 5m, 1h30m) as seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")


def seconds(duration: str) -> float:
    """`1h30m` -> 5400.0; ValueError for anything that is not a Prometheus duration."""
    parts = _PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"{duration!r} is not a duration such as 30s, 5m or 1h30m")
    return float(sum(int(number) * _UNITS[unit] for number, unit in parts))
