"""Did you mean: the close matches of a name that was not found, for the not-found messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from registry.errors import NotFound

__all__ = ["did_you_mean", "no_such_adapter", "suggestions"]


def suggestions(wanted: str, known: Iterable[str], limit: int = 3) -> list[str]:
    """Known names close to ``wanted``: the same name in another namespace first (``ticket-embedder``
    finds ``support/ticket-embedder``), then prefixes (``prod`` finds ``production``), then spelling."""
    names = sorted(set(known))
    leaf = wanted.rpartition("/")[2]
    same_leaf = [n for n in names if n != wanted and n.rpartition("/")[2] == leaf]
    prefixed = [n for n in names if n != wanted and len(wanted) >= 2 and n.rpartition("/")[2].startswith(leaf)]
    close = difflib.get_close_matches(wanted, names, n=limit, cutoff=0.6)
    out: list[str] = []
    for name in [*same_leaf, *prefixed, *close]:
        if name not in out:
            out.append(name)
    return out[:limit]


def did_you_mean(wanted: str, known: Iterable[str], render: str = "{}") -> str:
    """`` (did you mean 'x'?)``, or an empty string when nothing is close. ``render`` formats each match."""
    found = suggestions(wanted, known)
    if not found:
        return ""
    shown = " or ".join(repr(render.format(n)) for n in found)
    return f"; did you mean {shown}?"


def no_such_adapter(name: str, known: Iterable[str]) -> NotFound:
    """The one answer for an adapter that does not exist, or exists in a namespace the caller does not see
    (``known``: the names the caller sees), so both read alike and names do not leak."""
    return NotFound(
        f"adapter {name!r} does not exist{did_you_mean(name, known)}; `adapters ls` lists the adapters in this "
        "registry",
        name=name,
    )
