"""Dataset lineage read from disk: a dataset given with ``path=`` gets its sha256 and row count.

* a file: its sha256; rows counted for ``.jsonl`` (non-blank lines) and ``.csv``
  (records after the header, quoted newlines respected);
* a directory: the sha256 of its ``sha256sum`` listing (as for base fingerprints),
  rows summed over its ``.jsonl`` / ``.csv`` files.

Only what ends is hashed: a path that is a device, a pipe or a socket (``/dev/zero``, a FIFO)
is refused, and so is such an entry inside a directory, or a symlink that leaves it.

A sha256 or row count that the user also gave must agree with what is on disk.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import replace
from pathlib import Path

from registry._io import Progress
from registry.domain.canonical import listing_digest
from registry.domain.lineage import Dataset
from registry.errors import InvalidMetadata
from registry.filehashes import FileHashCache

__all__ = ["count_rows", "resolve_dataset"]

_COUNTED = (".jsonl", ".csv")


def count_rows(path: Path) -> int | None:
    """Rows of a .jsonl or .csv file; None for other files."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            records = sum(1 for _ in csv.reader(f))
        return max(records - 1, 0)
    return None


_KINDS = {
    stat.S_IFIFO: "a pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symlink",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _refuse(dataset: Dataset, what: str) -> InvalidMetadata:
    return InvalidMetadata(
        f"dataset {dataset.name!r}: {what}; a dataset directory may hold only regular files and directories "
        "(and links to them inside it), because every file is hashed: remove the entry or give path= a "
        "directory without it",
        "datasets.path",
    )


def _checked_file(dataset: Dataset, root: Path, full: Path) -> None:
    """Refuse ``full`` (listed under ``root``) unless it is a regular file, or a link to one inside ``root``."""
    mode = os.lstat(full).st_mode
    if stat.S_ISLNK(mode):
        target = full.resolve()
        if not target.is_relative_to(root.resolve()):
            raise _refuse(dataset, f"{full} is a symlink to {target}, outside {root}")
        try:
            mode = os.stat(target).st_mode
        except OSError:
            raise _refuse(dataset, f"{full} is a symlink to {target}, which does not exist") from None
    if not stat.S_ISREG(mode):
        raise _refuse(dataset, f"{full} is {_kind(mode)}, not a regular file")


def _files(dataset: Dataset, directory: Path) -> list[Path]:
    """The regular files of a dataset directory (hidden ones skipped), refusing anything else."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        for d in [d for d in dirnames if (here / d).is_symlink()]:
            target = (here / d).resolve()
            if not target.is_relative_to(directory.resolve()):
                raise _refuse(dataset, f"{here / d} is a symlink to {target}, outside {directory}")
        # a linked directory inside is not followed: its files are listed where they really are
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink())
        for f in sorted(filenames):
            if not f.startswith("."):
                _checked_file(dataset, directory, here / f)
                out.append(here / f)
    return out


def _checked_path(dataset: Dataset, path: Path) -> int:
    """The mode of a dataset's ``path=``: a regular file or a directory, never a device or a pipe."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is None:
        raise InvalidMetadata(
            f"dataset {dataset.name!r}: path {dataset.path} does not exist; give the training data file or "
            "directory, or leave path= out and give sha256= yourself",
            "datasets.path",
        )
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InvalidMetadata(
            f"dataset {dataset.name!r}: path {dataset.path} is {_kind(mode)}, not a regular file or a directory, "
            "and its content would never end hashing; give the training data file or directory",
            "datasets.path",
        )
    return mode


def resolve_dataset(dataset: Dataset, cache: FileHashCache, progress: Progress | None = None) -> Dataset:
    """Fill in sha256 and rows from ``dataset.path``; refuse contradictions."""
    if dataset.path is None:
        return dataset
    path = Path(dataset.path).expanduser()
    if stat.S_ISDIR(_checked_path(dataset, path)):
        files = _files(dataset, path)
        sha = listing_digest((f.relative_to(path).as_posix(), cache.sha256(f, progress)) for f in files).removeprefix(
            "sha256:"
        )
        counts = [c for f in files if f.suffix.lower() in _COUNTED and (c := count_rows(f)) is not None]
        rows = sum(counts) if counts else None
    else:
        sha = cache.sha256(path, progress)
        rows = count_rows(path)
    if dataset.sha256 is not None and dataset.sha256 != sha:
        raise InvalidMetadata(
            f"dataset {dataset.name!r}: the sha256 given ({dataset.sha256}) does not match {dataset.path} "
            f"({sha}); the file changed or the wrong path was given",
            "datasets.sha256",
        )
    if dataset.rows is not None and rows is not None and dataset.rows != rows:
        raise InvalidMetadata(
            f"dataset {dataset.name!r}: rows={dataset.rows} was given but {dataset.path} has {rows} rows",
            "datasets.rows",
        )
    return replace(dataset, path=str(path.resolve()), sha256=sha, rows=dataset.rows if rows is None else rows)
