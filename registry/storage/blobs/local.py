"""The content-addressed blob store: each file stored once, under its sha256.

Layout under the store root::

    sha256/ab/abcdef...   one read-only file per distinct content
    tmp/                  files being written (``*.incomplete``); never read

A blob is written to ``tmp/``, fsynced, then renamed to its final name, so a name
under ``sha256/`` always holds the complete bytes that hash to it. A crash leaves
at most an ``.incomplete`` file in ``tmp/``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from registry._io import Progress, copy_hashing, fsync_dir
from registry.errors import IntegrityError, StorageError

__all__ = ["BlobStore", "StoredBlob"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    new: bool  # False when the same bytes were already stored


class BlobStore:
    """A local directory of blobs named by their sha256."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = os.fspath(root)
        if "://" in text and not text.startswith("file://"):
            raise StorageError(
                f"blob store {text!r}: only local directories are supported as ADAPTERS_STORE; "
                "give a directory path (a mounted shared filesystem works for teams)"
            )
        self.root = Path(text.removeprefix("file://")).expanduser()

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (whether or not it exists)."""
        if not _HEX64.match(sha256):
            raise IntegrityError(
                f"{sha256!r} is not a sha256 hex digest, so it names no blob; the record that gave it was altered "
                "(run `adapters audit verify`)"
            )
        return self.root / "sha256" / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def _tmp_dir(self) -> Path:
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the blob store at {self.root}: {exc.strerror or exc}; "
                "check ADAPTERS_STORE / ADAPTERS_HOME and the directory's permissions"
            ) from None
        return tmp

    def put(self, src: str | os.PathLike[str], progress: Progress | None = None, label: str = "") -> StoredBlob:
        """Store a file's bytes; returns their sha256. Idempotent: the same bytes are stored once."""
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir(), suffix=".incomplete")
        tmp = Path(tmp_name)
        try:
            try:
                sha, size = copy_hashing(src, fd, progress, label or os.fspath(src), fsync=True)
            finally:
                os.close(fd)
            final = self.path(sha)
            if final.is_file() and final.stat().st_size == size:
                tmp.unlink()
                return StoredBlob(sha, size, new=False)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            fsync_dir(final.parent)
            return StoredBlob(sha, size, new=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def export(self, sha256: str, dst: Path, progress: Progress | None = None, label: str = "") -> tuple[str, int]:
        """Copy a blob to a new file ``dst`` and return the sha256 and size of what was written.

        The caller compares the returned hash with the expected one: a corrupted blob is
        detected on the bytes handed out, not trusted from its name.
        """
        fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            return copy_hashing(self.path(sha256), fd, progress, label or dst.name, fsync=True)
        finally:
            os.close(fd)
