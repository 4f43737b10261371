"""Durations as written on a command line (gc's --grace)."""

from __future__ import annotations

import pytest

from registry import InvalidInput
from registry.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("30m", 1800), ("1s", 1), ("2d", 172800), ("0s", 0), ("1h30m", 5400), (" 7D ", 604800)],
)
def test_a_duration_and_back(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "1x", "-1h", "1.5h", "30m1h", "1h1h", "1h 30m"])
def test_anything_else_is_refused_with_the_forms_to_use(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"grace .* is not a duration; write a number and a unit: 30s, 30m, 24h"):
        parse_duration(text, "grace")
