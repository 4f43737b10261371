"""Dataset lineage read from disk: a dataset given with ``path=`` gets its sha256 and row count.

* a file: its sha256; rows counted for ``.jsonl`` (non-blank lines) and ``.csv``
  (records after the header, quoted newlines respected);
* a directory: the sha256 of its ``sha256sum`` listing (as for base fingerprints),
  rows summed over its ``.jsonl`` / ``.csv`` files.

A sha256 or row count that the user also gave must agree with what is on disk.
"""

from __future__ import annotations

import csv
import os
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


def _files(directory: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out


def resolve_dataset(dataset: Dataset, cache: FileHashCache, progress: Progress | None = None) -> Dataset:
    """Fill in sha256 and rows from ``dataset.path``; refuse contradictions."""
    if dataset.path is None:
        return dataset
    path = Path(dataset.path).expanduser()
    if not path.exists():
        raise InvalidMetadata(
            f"dataset {dataset.name!r}: path {dataset.path} does not exist; give the training data file or "
            "directory, or leave path= out and give sha256= yourself",
            "datasets.path",
        )
    if path.is_dir():
        files = _files(path)
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
