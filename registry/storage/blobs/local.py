"""The blob store as a local directory (a mounted shared filesystem works too).

Layout under the root::

    sha256/ab/abcdef...   one read-only file per distinct content
    tmp/                  files being written (``{pid}.{host}.{random}.incomplete``); never read

A blob is written to ``tmp/``, fsynced, then renamed to its final name, so a name under
``sha256/`` always holds the complete bytes that hash to it. A crash leaves at most an
``.incomplete`` file in ``tmp/``, which the next push into the store removes once its owner
process is gone (see :mod:`registry._temporary`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from registry._io import (
    FILE_MODE,
    Progress,
    copy_hashing,
    create_temporary_file,
    fsync_dir,
    pwrite_all,
    write_failure,
)
from registry._temporary import remove_orphans
from registry.errors import BlobMissing, IntegrityError, InvalidInput, StorageError
from registry.storage.blobs.base import BlobInfo, PendingUpload, StoredBlob, blob_key, check_sha256

__all__ = ["IncomingBlob", "LocalBlobStore"]


class LocalBlobStore:
    """A directory of blobs named by their sha256."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.url = str(self.root)
        self._swept = False

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (whether or not it exists)."""
        return self.root / blob_key(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def _tmp_dir(self) -> Path:
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if self._write_failure(exc) is not None:
                raise
            raise StorageError(
                f"cannot create the blob store at {self.root}: {exc.strerror or exc}; "
                "check ADAPTERS_STORE / ADAPTERS_HOME and the directory's permissions"
            ) from None
        return tmp

    def _write_failure(self, exc: OSError) -> StorageError | None:
        return write_failure(
            exc,
            f"the blob store {self.root}",
            self.root,
            "point ADAPTERS_STORE at a writable directory with room, and try again; nothing was stored",
        )

    def put(self, src: str | os.PathLike[str], progress: Progress | None = None, label: str = "") -> StoredBlob:
        """Store a file's bytes; returns their sha256. Idempotent: the same bytes are stored once.

        A full disk, a quota, a read-only store or missing permissions raise :class:`StorageError`
        saying so; the temporary file is removed.
        """
        try:
            return self._put(src, progress, label)
        except OSError as exc:
            failure = self._write_failure(exc)
            if failure is None:
                raise
            raise failure from None

    def _fresh_temporary(self) -> tuple[int, Path]:
        tmp_dir = self._tmp_dir()
        if not self._swept:  # once per store and process: leftovers of pushes that were killed
            remove_orphans(tmp_dir, "")
            self._swept = True
        return create_temporary_file(tmp_dir)

    def receive(self, sha256: str, size: int) -> IncomingBlob:
        """A blob arriving as a stream of chunks (a push through ``adapters serve``), said to be ``size``
        bytes hashing to ``sha256``: written to ``tmp/`` and hashed as it arrives, published under its
        name only by :meth:`IncomingBlob.finish` when both match, else removed."""
        check_sha256(sha256)
        try:
            fd, tmp = self._fresh_temporary()
        except OSError as exc:
            failure = self._write_failure(exc)
            if failure is None:
                raise
            raise failure from None
        return IncomingBlob(self, sha256, size, fd, tmp)

    def _publish(self, tmp: Path, sha: str, size: int) -> StoredBlob:
        """Rename a complete, fsynced temporary file to the blob's name (or drop it: the blob is there)."""
        final = self.path(sha)
        if final.is_file() and final.stat().st_size == size:
            tmp.unlink()
            # written "now" again, so that `adapters gc` gives the push in flight its grace period
            with contextlib.suppress(OSError):
                os.utime(final)
            return StoredBlob(sha, size, new=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return StoredBlob(sha, size, new=True)

    def _put(self, src: str | os.PathLike[str], progress: Progress | None, label: str) -> StoredBlob:
        fd, tmp = self._fresh_temporary()
        try:
            try:
                sha, size = copy_hashing(src, fd, progress, label or os.fspath(src), fsync=True)
            finally:
                os.close(fd)
            return self._publish(tmp, sha, size)
        except BaseException:
            with contextlib.suppress(OSError):  # on a read-only filesystem even this may fail
                tmp.unlink(missing_ok=True)
            raise

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256, self.url) from None

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        with self.open(sha256) as f:
            f.seek(start)
            return f.read(length)

    def export(self, sha256: str, dst: Path, progress: Progress | None = None, label: str = "") -> tuple[str, int]:
        """Copy a blob to a new file ``dst`` and return the sha256 and size of what was written.

        The caller compares the returned hash with the expected one: a corrupted blob is
        detected on the bytes handed out, not trusted from its name.
        """
        source = self.path(sha256)
        if not source.is_file():
            raise BlobMissing(sha256, self.url)
        fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            return copy_hashing(source, fd, progress, label or dst.name, fsync=True)
        except FileNotFoundError:  # removed between the check and the copy
            raise BlobMissing(sha256, self.url) from None
        finally:
            os.close(fd)

    def iter_blobs(self) -> Iterator[BlobInfo]:
        top = self.root / "sha256"
        try:
            prefixes = sorted(os.scandir(top), key=lambda e: e.name)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                return
            raise StorageError(f"cannot list the blob store {self.root}: {exc.strerror or exc}") from None
        for prefix in prefixes:
            if not prefix.is_dir(follow_symlinks=False):
                continue
            for entry in sorted(os.scandir(prefix.path), key=lambda e: e.name):
                try:
                    check_sha256(entry.name)
                except IntegrityError:  # not a blob name: not ours to list
                    continue
                st = entry.stat(follow_symlinks=False)
                yield BlobInfo(entry.name, st.st_size, st.st_mtime)

    def info(self, sha256: str) -> BlobInfo | None:
        try:
            st = self.path(sha256).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, st.st_size, st.st_mtime)

    def delete(self, sha256s: Iterable[str]) -> None:
        """Remove blobs (``adapters gc``); one that is already gone is not an error."""
        for sha256 in sha256s:
            path = self.path(sha256)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot remove {path} from the blob store: {exc.strerror or exc}") from None
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when it was the last blob under its two-digit prefix

    def pending_uploads(self) -> Iterator[PendingUpload]:
        """The files in ``tmp/``: pushes being written now, or killed while writing."""
        try:
            entries = sorted(os.scandir(self.root / "tmp"), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # finished (renamed) while we listed
                continue
            yield PendingUpload(entry.name, f"tmp/{entry.name}", st.st_size, st.st_mtime)

    def abort_upload(self, upload: PendingUpload) -> None:
        if "/" in upload.id or upload.id in ("", ".", ".."):
            raise StorageError(f"{upload.id!r} is not a temporary file of the blob store {self.root}")
        with contextlib.suppress(FileNotFoundError):
            (self.root / "tmp" / upload.id).unlink()

    def close(self) -> None:
        """Nothing to release for a directory."""


class IncomingBlob:
    """A blob being received chunk by chunk into the store's ``tmp/``: hashed as it is written, never
    held in memory, and published under its name only when its bytes are the ones announced.

    :meth:`write` refuses a byte past the announced size, :meth:`finish` a stream that is shorter or
    hashes to anything else; either way the temporary file is removed and nothing is kept.
    :meth:`abort` (a dropped connection) removes it too. A killed server leaves the temporary file,
    which the next write into the store removes once this process is gone.
    """

    def __init__(self, store: LocalBlobStore, sha256: str, size: int, fd: int, tmp: Path) -> None:
        self.store = store
        self.sha256 = sha256
        self.size = size
        self.received = 0
        self._fd = fd
        self._tmp = tmp
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        if self.received + len(data) > self.size:
            self.abort()
            raise InvalidInput(
                f"the upload of blob {self.sha256} carried more than the {self.size:,} bytes it was announced "
                "with; nothing was kept. Push again (is the file being written while it is pushed?)"
            )
        try:
            pwrite_all(self._fd, data, self.received)
        except OSError as exc:
            self.abort()
            failure = self.store._write_failure(exc)
            if failure is None:
                raise
            raise failure from None
        self._hash.update(data)
        self.received += len(data)

    def finish(self) -> StoredBlob:
        """Check the bytes received, make them durable and publish them under their name."""
        found = self._hash.hexdigest()
        if self.received != self.size or found != self.sha256:
            self.abort()
            raise InvalidInput(
                f"the upload of blob {self.sha256} ({self.size:,} bytes) brought {self.received:,} bytes hashing "
                f"to {found}; nothing was kept. Push again (the file changed while it was pushed, or it was "
                "altered on the way)"
            )
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            return self.store._publish(self._tmp, self.sha256, self.size)
        except OSError as exc:
            self.abort()
            failure = self.store._write_failure(exc)
            if failure is None:
                raise
            raise failure from None

    def abort(self) -> None:
        """Drop what was received (idempotent)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)
