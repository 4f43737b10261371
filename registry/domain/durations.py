"""Durations as people write them on a command line: ``24h``, ``30m``, ``90s``, ``2d``, ``1h30m``, ``0s``."""

from __future__ import annotations

import re

from registry.errors import InvalidInput

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"(?:\d+[dhms])+")


def parse_duration(text: str, what: str = "duration") -> int:
    """Seconds in ``text``: whole numbers each followed by a unit (``d``, ``h``, ``m``, ``s``), largest first."""
    value = text.strip().lower()
    parts = _PART.findall(value) if _WHOLE.fullmatch(value) else []
    units = [u for _, u in parts]
    if not parts or units != sorted(units, key=lambda u: -_UNITS[u]) or len(set(units)) != len(units):
        raise InvalidInput(
            f"{what} {text!r} is not a duration; write a number and a unit: 30s, 30m, 24h, 7d, or 1h30m (0s for none)"
        )
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """``86400`` -> ``24h``, ``5400`` -> ``1h30m``, ``0`` -> ``0s`` (the form :func:`parse_duration` reads).

    Hours are not folded into days: ``24h`` is what people write for a day of grace."""
    left = int(seconds)
    if left == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        n, left = divmod(left, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
