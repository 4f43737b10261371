"""Tables for people that survive a narrow terminal.

What people copy out of a table (refs, digests, fingerprints, versions, states) is never wrapped:
those columns are ``whole``. Prose (descriptions, comments, reasons, paths, dates, names) gives
way instead: it wraps, at words where it can. When even that does not fit, the columns least
needed are left out, in the order their ``drop`` says, and a line under the table names them
(``--json`` always has every field). Digests and fingerprints are shown as their first 12 hex
digits (:func:`short_digest`), enough for ``NAME@sha256:PREFIX``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Column", "prose", "render_table", "short_digest", "whole"]

#: Prose is not squeezed narrower than this before columns are left out.
PROSE_MIN_WIDTH = 10


@dataclass(frozen=True)
class Column:
    """One column: its header, whether its values are kept whole, when it is left out."""

    header: str
    keep_whole: bool = False
    #: 0: always shown; otherwise left out on a narrow terminal, the highest number first
    drop: int = 0
    min_width: int = PROSE_MIN_WIDTH


def whole(header: str, drop: int = 0) -> Column:
    """A column of identifiers, numbers or short words: never wrapped."""
    return Column(header, keep_whole=True, drop=drop)


def prose(header: str, drop: int = 0, min_width: int = PROSE_MIN_WIDTH) -> Column:
    """A column of text that may wrap (at words where it can) to leave room for the rest."""
    return Column(header, keep_whole=False, drop=drop, min_width=min_width)


def short_digest(digest: str | None, n: int = 12) -> str:
    """``sha256:ab12…`` as its first ``n`` hex digits (the full value is in ``--json``)."""
    if not digest:
        return "-"
    return digest.removeprefix("sha256:")[:n]


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _fitting(columns: Sequence[Column], cells: list[list[str]], width: int) -> list[int]:
    """The indices of the columns to show: all of them, or without the droppable ones that do not fit."""
    from rich.cells import cell_len

    def widest(i: int) -> int:
        longest = max((max((cell_len(line) for line in row[i].splitlines()), default=0) for row in cells), default=0)
        return max(cell_len(columns[i].header), longest)

    def needed(shown: list[int]) -> int:
        content = sum(widest(i) if columns[i].keep_whole else min(widest(i), columns[i].min_width) for i in shown)
        return content + 3 * len(shown) - 1  # a space either side of each cell, a rule between columns

    shown = list(range(len(columns)))
    droppable = sorted((i for i in shown if columns[i].drop), key=lambda i: (columns[i].drop, i))
    while droppable and needed(shown) > width:
        shown.remove(droppable.pop())
    return shown


def render_table(console: Console, title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table on ``console``, fitted to its width (see the module's doc)."""
    from rich.table import Table
    from rich.text import Text

    cells = [[_cell(v) for v in row] for row in rows]
    shown = _fitting(columns, cells, console.width)
    t = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for i in shown:
        c = columns[i]
        if c.keep_whole:
            t.add_column(c.header, no_wrap=True, overflow="ellipsis")
        else:
            t.add_column(c.header, overflow="fold")
    for row in cells:
        t.add_row(*(Text(row[i]) for i in shown))  # Text: a value is never read as rich markup
    console.print(t)
    left_out = [columns[i].header for i in range(len(columns)) if i not in shown]
    if left_out:
        console.print(
            f"({', '.join(left_out)} left out to fit {console.width} columns; --json has every field)",
            style="dim",
            highlight=False,
        )
