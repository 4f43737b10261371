"""Timestamps as the registry records them: ISO-8601 UTC text with microseconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["Clock", "format_iso", "now_iso", "parse_iso"]

#: The registry's clock: a function returning the current time as recorded text. Services take one
#: when they are built (``Registry(clock=...)``), so tests can fix time and servers can share one.
Clock = Callable[[], str]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_iso() -> str:
    """The current time, e.g. ``2026-11-22T10:00:00.123456Z`` (sortable as text)."""
    return datetime.now(timezone.utc).strftime(_FORMAT)


def format_iso(moment: datetime) -> str:
    """An aware datetime as recorded text."""
    return moment.astimezone(timezone.utc).strftime(_FORMAT)


def parse_iso(text: str) -> datetime:
    """A recorded timestamp back as an aware datetime (``ValueError`` for text not in the recorded format)."""
    if len(text) != 27 or not text.endswith("Z") or text[10] != "T":
        raise ValueError(f"not a recorded timestamp: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)  # C speed; strptime is 10x slower
