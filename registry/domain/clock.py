"""Timestamps as the registry records them: ISO-8601 UTC text with microseconds."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["now_iso", "parse_iso"]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_iso() -> str:
    """The current time, e.g. ``2026-11-22T10:00:00.123456Z`` (sortable as text)."""
    return datetime.now(timezone.utc).strftime(_FORMAT)


def parse_iso(text: str) -> datetime:
    """A recorded timestamp back as an aware datetime."""
    return datetime.strptime(text, _FORMAT).replace(tzinfo=timezone.utc)
