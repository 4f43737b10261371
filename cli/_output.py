"""Rendering: rich tables for people, JSON for machines; results to stdout, the rest to stderr.

rich is imported only when something is rendered for people, so ``--json`` output
and ``--help`` stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Output",
    "emit_json",
    "human_size",
    "progress_bars",
    "stderr_console",
    "stdout_console",
    "warn",
]

#: Files smaller than this get no progress bar.
PROGRESS_MIN_BYTES = 64 << 20


class Output:
    """Where a command's result goes, decided once per command: JSON on stdout (the documented keys)
    or a rendering for people; warnings and progress on stderr (no progress bars with JSON)."""

    def __init__(self, as_json: bool) -> None:
        self.json = as_json

    def result(self, value: Any, render: Callable[[Any], None]) -> None:
        """Emit ``value``: its ``to_dict()`` (or a list of them) as JSON, else ``render(value)``."""
        if self.json:
            emit_json(plain(value))
        else:
            render(value)

    def warn(self, message: str) -> None:
        warn(message)

    def progress(self) -> Any:
        """A context manager giving a progress callback (None when bars are not wanted)."""
        return progress_bars(not self.json)


def plain(value: Any) -> Any:
    """A result as JSON-ready data: ``to_dict()`` of a result object, element-wise for lists."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def emit_json(value: Any) -> None:
    """Write ``value`` as JSON to stdout (keys in the documented order).

    A list is written one element per line: still readable, and encoded by json's C
    encoder (``indent`` would switch to its pure-Python one, 5x slower on 10,000 rows).
    """
    if isinstance(value, list):
        body = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in value)
        sys.stdout.write(f"[\n{body}\n]\n" if value else "[]\n")
    else:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def stdout_console() -> Console:
    from rich.console import Console

    # Piped output is read by people in logs and wide terminals: do not fold it at 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def warn(message: str) -> None:
    """A warning for people, on stderr."""
    sys.stderr.write(f"warning: {message}\n")


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress callback drawing one bar per large file on stderr, or None when not wanted.

    Bars appear only on a terminal, never with ``--json``, and only for files over 64 MiB.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    ) as bars:

        def report(label: str, done: int, total: int) -> None:
            if total < PROGRESS_MIN_BYTES:
                return
            task = tasks.get(label)
            if task is None:
                task = tasks[label] = bars.add_task(label, total=total)
            bars.update(task, completed=done)

        yield report


def short_digest(digest: str | None, n: int = 12) -> str:
    if not digest:
        return "-"
    return digest.removeprefix("sha256:")[:n]


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("-" if v is None else str(v) for v in r))
    return t
