"""Rendering: rich tables for people, JSON for machines; results to stdout, the rest to stderr.

rich is imported only when something is rendered for people, so ``--json`` output
and ``--help`` stay fast.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Output",
    "TrimmedLines",
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


#: The width of piped output when COLUMNS does not say.
PIPED_WIDTH = 160


def stdout_console() -> Console:
    """The console results are printed on: the terminal's width, or (piped) COLUMNS or 160 columns.

    Piped output is read by people in logs and wide terminals: it is not folded at 80 columns.
    Every line is written without the spaces rich pads tables with (:class:`TrimmedLines`).
    """
    from rich.console import Console

    if sys.stdout.isatty():
        # COLUMNS/LINES, else the terminal's size; given both, rich keeps them even on a TERM=dumb terminal
        # (rich 15 sizes a dumb terminal 80x25 unless width and height are both set)
        size = shutil.get_terminal_size()
        width, height = size.columns, size.lines
    else:
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH
        height = None
    return Console(file=cast(IO[str], TrimmedLines(sys.stdout)), soft_wrap=False, width=width, height=height)


class TrimmedLines(io.TextIOBase):
    """A text stream writing to ``stream`` each line without its trailing spaces or tabs.

    rich pads every cell of a table, the last one included, to its column's width; people who
    pipe the output into a file, a diff or a review comment should not get that padding. A line
    is held until its end arrives (or a flush), so padding split over writes is trimmed too;
    colour codes after the padding (a forced-colour terminal) are kept.
    """

    _TAIL = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")
    _STYLE = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            self._stream.write("".join(self._trimmed(line) + "\n" for line in lines))
        return len(text)

    def _trimmed(self, line: str) -> str:
        if "\x1b" not in line:
            return line.rstrip(" \t")
        tail = self._TAIL.search(line)
        if tail is None:
            return line
        return line[: tail.start()] + "".join(self._STYLE.findall(tail.group()))

    def flush(self) -> None:
        if self._partial:
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # io.TextIOBase declares it read-only
        return getattr(self._stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True


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
