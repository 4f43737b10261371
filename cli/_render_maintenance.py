"""Rendering fsck and gc results for people: a verdict line, then a table of what is wrong or removed.

Blobs are shown by their first 12 hex digits, as every table shows a digest; ``--json`` and the ``gc``
audit event carry each sha256 in full."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cli._output import human_size, stdout_console
from cli._tables import prose, render_table, short_digest, whole

if TYPE_CHECKING:
    from registry import FsckResult, GcResult

__all__ = ["render_fsck", "render_gc"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _requests(n: int | None, store: str) -> str:
    return f"; {_plural(n, 'request')} to {store}" if n is not None else ""


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def render_fsck(result: FsckResult) -> None:
    console = stdout_console()
    how = "re-hashed" if result.mode == "full" else "present with their sizes (quick: not re-hashed)"
    checked = (
        f"{_plural(result.versions, 'version')}, {_plural(result.blobs, 'blob')} ({_plural(result.files, 'file')}, "
        f"{human_size(result.bytes)}) {how}"
    )
    problems = len(result.blob_problems) + len(result.version_problems)
    if result.ok:
        console.print(f"[green]store intact[/]: {checked}", highlight=False)
    else:
        console.print(f"[red]STORE DAMAGED[/]: {_plural(problems, 'problem')}; {checked}", highlight=False)
    if result.blob_problems:
        console.print()
        rows = [
            (
                p.kind,
                short_digest(p.sha256),
                "\n".join(str(u) for u in p.uses),
                _blob_detail(p.kind, p.size, p.stored_size),
            )
            for p in result.blob_problems
        ]
        columns = [whole("PROBLEM"), whole("BLOB"), prose("USED BY"), prose("DETAIL", drop=1)]
        render_table(console, "Blobs", columns, rows)
    if result.version_problems:
        console.print()
        rows_v = [(p.kind, p.ref, p.message) for p in result.version_problems]
        render_table(console, "Versions", [whole("PROBLEM"), whole("VERSION"), prose("DETAIL")], rows_v)
    console.print(
        f"{_plural(result.unreferenced, 'unreferenced blob')} ({human_size(result.unreferenced_bytes)}) in the store, "
        f"which `adapters gc` would consider{_requests(result.requests, result.store)}",
        highlight=False,
    )


def _blob_detail(kind: str, size: int, stored: int | None) -> str:
    if kind == "blob-missing":
        return f"not in the store ({size} bytes recorded)"
    if kind == "blob-size":
        return f"{stored} bytes in the store, {size} recorded"
    return "its bytes no longer hash to its name"


def render_gc(result: GcResult) -> None:
    console = stdout_console()
    verb = "would remove" if result.dry_run else "removed"
    what = f"{_plural(len(result.blobs), 'unreferenced blob')} and {_plural(len(result.uploads), 'abandoned upload')}"
    freed = f"{human_size(result.bytes_freed)} {'would be ' if result.dry_run else ''}freed"
    recorded = f" (audit event {result.event})" if result.event is not None else ""
    dry = "; dry run: nothing was removed or recorded" if result.dry_run else ""
    if result.blobs or result.uploads:
        console.print(f"{verb} {what}, {freed}{recorded}{dry}", highlight=False)
    else:
        console.print(f"nothing to remove: no unreferenced blob or upload older than {result.to_dict()['grace']}")
    rows = [("blob", short_digest(b.sha256), human_size(b.size), _when(b.modified)) for b in result.blobs]
    rows += [("upload", u.key, human_size(u.size), _when(u.started)) for u in result.uploads]
    if rows:
        columns = [whole("KIND"), prose("SHA256 / KEY"), whole("SIZE"), prose("LAST WRITTEN", drop=1)]
        render_table(console, None, columns, rows)
    grace = result.to_dict()["grace"]
    console.print(
        f"kept: {_plural(result.young, 'blob')} written within {grace}, {result.referenced} older ones that "
        f"versions reference, {result.refreshed} written again since the listing "
        f"({_plural(result.listed, 'blob')} listed in {result.store}{_requests(result.requests, 'the store')})",
        highlight=False,
    )
