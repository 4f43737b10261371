"""The HTML report's building blocks: escaped values, identifiers and times on one line, tables."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from registry.audit.report import phrases

__all__ = ["anchor", "e", "kv", "mono", "pair", "ref", "short", "table", "verdict", "when"]


def e(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return '<span class="na">-</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return escape(", ".join(str(v) for v in value if v is not None))
    if isinstance(value, dict):
        return escape(", ".join(f"{k}={v}" for k, v in value.items() if v is not None))
    return escape(str(value))


def mono(value: Any) -> str:
    """A digest, fingerprint or hash in full, on one line."""
    if not value:
        return e(None)
    return f'<span class="mono nowrap">{e(value)}</span>'


def short(value: str | None) -> str:
    """A digest in a table: its first 12 hex digits on one line, the full value in the title."""
    if not value:
        return e(None)
    return f'<span class="mono nowrap" title="{escape(value)}">{escape(phrases.short(value) or "")}</span>'


def when(at: str | None) -> str:
    """A recorded time on one line, to the second; the exact time in the title."""
    if not at:
        return e(None)
    return (
        f'<time class="nowrap" datetime="{escape(at)}" title="{escape(at)}">{escape(phrases.moment(at) or at)}</time>'
    )


def ref(ref: str | None) -> str:
    return f'<span class="nowrap">{e(ref)}</span>' if ref else e(None)


def pair(a: Any, b: Any) -> str:
    """``a / b``, or absent when both are."""
    if e(a) == e(b) == e(None):
        return e(None)
    return f"{e(a)} / {e(b)}"


def verdict(passed: bool | None) -> str:
    return {
        True: '<span class="pass">pass</span>',
        False: '<span class="fail">FAIL</span>',
        None: '<span class="na">n/a</span>',
    }[passed]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "none recorded") -> str:
    if not rows:
        return f'<p class="na">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def kv(pairs: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f'<tr><td class="k">{escape(k)}</td><td>{v}</td></tr>' for k, v in pairs) + "</table>"


def anchor(ref: str) -> str:
    return "v-" + "".join(c if c.isalnum() else "-" for c in ref)
