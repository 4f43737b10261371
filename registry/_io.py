"""Low-level file I/O: hashing, copying while hashing, atomic publication.

Copying and hashing run side by side (``hashlib`` and the copy syscalls release the
GIL), so a verified copy costs about one sha256 pass, not a copy plus a hash.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from registry._temporary import remove_orphans, temporary_name
from registry.errors import DestinationExists, InvalidInput, RegistryError, StorageError

__all__ = [
    "CHUNK_SIZE",
    "DIR_MODE",
    "FILE_MODE",
    "PRIVATE_MODE",
    "Progress",
    "atomic_write_bytes",
    "check_output_dir",
    "copy_hashing",
    "copy_range",
    "create_temporary_file",
    "fsync_dir",
    "fsync_file",
    "hash_file",
    "output_failure",
    "public_key_bytes",
    "publish_dir",
    "pwrite_all",
    "scratch_dir",
    "temporary_sibling_dir",
    "write_failure",
]

CHUNK_SIZE = 8 << 20


class Progress(Protocol):
    """Told how far a long file operation has come. ``label`` names the file."""

    def __call__(self, label: str, done: int, total: int, /) -> None: ...


def _report(progress: Progress | None, label: str, done: int, total: int) -> None:
    if progress is not None:
        progress(label, done, total)


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None, label: str = "") -> tuple[str, int]:
    """sha256 hex and size of a file, read in large chunks."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    done = 0
    with open(path, "rb", buffering=0) as f:
        total = os.fstat(f.fileno()).st_size
        while n := f.readinto(buf):
            h.update(view[:n])
            done += n
            _report(progress, label, done, total)
    return h.hexdigest(), done


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``pwrite`` may write less than asked)."""
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}


def _copy_chunk(src_fd: int, dst_fd: int, src_offset: int, dst_offset: int, length: int) -> int:
    """Copy up to ``length`` bytes between offsets, in the kernel where it can; 0 at the source's end."""
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is not None:
        try:
            return int(copy_file_range(src_fd, dst_fd, length, src_offset, dst_offset))
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
    data = os.pread(src_fd, length, src_offset)
    pwrite_all(dst_fd, data, dst_offset)
    return len(data)


def copy_range(src_fd: int, dst_fd: int, src_offset: int, dst_offset: int, length: int) -> None:
    """Copy exactly ``length`` bytes between offsets of two open files."""
    done = 0
    while done < length:
        n = _copy_chunk(src_fd, dst_fd, src_offset + done, dst_offset + done, min(CHUNK_SIZE, length - done))
        if n <= 0:
            raise OSError(errno.EIO, f"source ended {length - done} bytes early")
        done += n


class _Writer(threading.Thread):
    """Copies ``src_fd`` into ``dst_fd`` chunk by chunk in the kernel, then fsyncs it."""

    def __init__(self, src_fd: int, dst_fd: int, fsync: bool) -> None:
        super().__init__(daemon=True)
        self.src_fd, self.dst_fd, self.fsync = src_fd, dst_fd, fsync
        self.cond = threading.Condition()
        self.copied = 0
        self.finished = False
        self.stop = False  # set by the hashing thread when it gives up (error, Ctrl-C)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            offset = 0
            while not self.stop and (n := _copy_chunk(self.src_fd, self.dst_fd, offset, offset, CHUNK_SIZE)):
                offset += n
                with self.cond:
                    self.copied = offset
                    self.cond.notify()
            if self.fsync and not self.stop:
                os.fsync(self.dst_fd)  # overlaps with the hashing still going on
        except BaseException as exc:  # handed to the hashing thread
            self.error = exc
        finally:
            with self.cond:
                self.finished = True
                self.cond.notify()


def copy_hashing(
    src: str | os.PathLike[str],
    dst_fd: int,
    progress: Progress | None = None,
    label: str = "",
    fsync: bool = True,
) -> tuple[str, int]:
    """Copy ``src`` into ``dst_fd`` (opened read-write) and return (sha256 hex, size) of what was written.

    A writer thread copies in the kernel (``copy_file_range``, a reflink where the
    filesystem can) and then fsyncs; this thread reads each chunk back *from the
    destination* and hashes it. The hash therefore covers exactly the bytes that
    landed in the destination, and copying, fsync and hashing overlap: the whole
    costs about one sha256 pass.
    """
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    src_fd = os.open(src, os.O_RDONLY)
    try:
        total = os.fstat(src_fd).st_size
        writer = _Writer(src_fd, dst_fd, fsync)
        writer.start()
        hashed = 0
        try:
            while True:
                with writer.cond:
                    writer.cond.wait_for(lambda h=hashed: writer.copied > h or writer.finished)  # type: ignore[misc]
                    available, finished = writer.copied, writer.finished
                while hashed < available:
                    n = os.preadv(dst_fd, [view[: min(CHUNK_SIZE, available - hashed)]], hashed)
                    if n <= 0:
                        raise OSError(errno.EIO, "destination file shrank while copying")
                    h.update(view[:n])
                    hashed += n
                    _report(progress, label, hashed, total)
                if finished and hashed >= writer.copied:
                    break
        except BaseException:
            writer.stop = True
            raise
        finally:
            writer.join()
        if writer.error is not None:
            raise writer.error
    finally:
        os.close(src_fd)
    return h.hexdigest(), hashed


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or creation inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Make a file's written data durable (any descriptor of the file will do)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Files and directories the registry hands out (pulled and merged directories, provenance, reports,
#: checkpoints, public keys) are created with these modes, less the process's umask: a serving process
#: running as another user can read what a umask of 022 lets it. Private keys are 0600 whatever the
#: umask; the blob store's blobs are made read-only (0444) once complete.
FILE_MODE = 0o666
DIR_MODE = 0o777
PRIVATE_MODE = 0o600


def _create_file(directory: Path, prefix: str, mode: int = FILE_MODE) -> tuple[int, Path]:
    """A new file under an owned temporary name (see :mod:`registry._temporary`), opened read-write,
    with ``mode`` less the umask."""
    while True:
        tmp = directory / temporary_name(prefix)
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def create_temporary_file(directory: Path, mode: int = PRIVATE_MODE) -> tuple[int, Path]:
    """A new ``{pid}.{host}.{random}.incomplete`` file in ``directory`` (a blob store's ``tmp/``)."""
    return _create_file(directory, "", mode)


def atomic_write_bytes(path: Path, data: bytes, private: bool = False) -> None:
    """Write a file so that readers see the old content or the new, never a half: mode 0666 less the
    umask, or 0600 from its creation on when ``private`` (a private key).

    Leftovers of earlier writers of ``path`` that were killed are removed first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path.parent, f".{path.name}.")
    fd, tmp = _create_file(path.parent, f".{path.name}.", PRIVATE_MODE if private else FILE_MODE)
    try:
        pwrite_all(fd, data, 0)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _create_dir(parent: Path, prefix: str, mode: int = DIR_MODE) -> Path:
    while True:
        tmp = parent / temporary_name(prefix)
        try:
            os.mkdir(tmp, mode)
            return tmp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


@contextmanager
def _removed_on_exit(tmp: Path) -> Iterator[Path]:
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def temporary_sibling_dir(target: Path) -> Iterator[Path]:
    """A fresh directory next to ``target`` (same filesystem, so it can be renamed into place),
    named ``.{target}.{pid}.{host}.{random}.incomplete``.

    Removed on exit unless it was renamed away. Leftovers of earlier runs writing ``target`` that
    were killed are removed first.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(target.parent, f".{target.name}.")
    with _removed_on_exit(_create_dir(target.parent, f".{target.name}.")) as tmp:
        yield tmp


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory in the system's temporary directory, removed on exit; leftovers of killed
    runs with the same ``prefix`` are removed first."""
    parent = Path(tempfile.gettempdir())
    remove_orphans(parent, prefix)
    with _removed_on_exit(_create_dir(parent, prefix, 0o700)) as tmp:  # private scratch space
        yield tmp


def check_output_dir(target: Path, force: bool) -> None:
    """Refuse to write a directory at ``target`` when it is a symlink, a file, or (without ``force``)
    a directory that holds files."""
    if target.is_symlink():
        raise DestinationExists(str(target), "symlink", os.readlink(target))
    if target.exists():
        if not target.is_dir():
            raise DestinationExists(str(target), "file")
        if not force and any(target.iterdir()):
            raise DestinationExists(str(target))


def publish_dir(tmp: Path, target: Path) -> None:
    """Rename a finished directory into place; an existing one is swapped out, then removed.

    The swap is two renames: if the second fails, the old directory is put back. A symlink at
    ``target`` is refused (checked again here: it may have appeared since the caller looked).
    """
    if target.is_symlink():
        raise DestinationExists(str(target), "symlink", os.readlink(target))
    if target.is_dir():
        if not any(target.iterdir()):
            target.rmdir()
            os.rename(tmp, target)
        else:
            old = target.with_name(f".{target.name}.replaced-{os.getpid()}-{threading.get_ident()}")
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)
    fsync_dir(target.parent)


_NO_ROOM = {errno.ENOSPC: "has no space left on its device", errno.EDQUOT: "is over its disk quota"}
_NOT_WRITABLE = {
    errno.EROFS: "is on a read-only filesystem",
    errno.EACCES: "is not writable (permission denied)",
    errno.EPERM: "is not writable (operation not permitted)",
}


def write_failure(exc: BaseException, place: str, root: Path, fix: str) -> StorageError | None:
    """A :class:`StorageError` saying that ``place`` (the directory ``root``) cannot take a write that
    failed with ``exc`` (a full disk, a quota, a read-only filesystem, no permission), else None.

    An error about a file outside ``root`` (reading the source, say) is not about ``place``: None.
    """
    if not isinstance(exc, OSError) or isinstance(exc, RegistryError):
        return None
    if exc.errno in _NO_ROOM:
        reason, fix = _NO_ROOM[exc.errno], f"free space on it, or {fix}"
    elif exc.errno in _NOT_WRITABLE:
        reason = _NOT_WRITABLE[exc.errno]
    else:
        return None
    where = ""
    if exc.filename is not None:
        name = Path(os.fsdecode(exc.filename)).absolute()
        if not name.is_relative_to(root.absolute()):
            return None
        where = f" (writing {name})"
    return StorageError(f"{place} {reason}{where}; {fix}")


def output_failure(exc: BaseException, target: Path) -> StorageError | None:
    """:func:`write_failure` for a directory being written at ``target`` (by pull or merge)."""
    return write_failure(
        exc, str(target.parent), target.parent, f"choose another output directory; nothing was written to {target}"
    )


def map_threads(fn: Callable[[Path], tuple[str, int]], paths: list[Path], workers: int) -> list[tuple[str, int]]:
    """Run ``fn`` over ``paths`` on a few threads (hashing releases the GIL), keeping order."""
    if workers <= 1 or len(paths) <= 1:
        return [fn(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor  # not on the CLI's start-up path

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, paths))


def public_key_bytes(path: str | os.PathLike[str] | bytes | None) -> bytes | None:
    """The public key a file holds (or the PEM bytes themselves, as a server receives them)."""
    if path is None or isinstance(path, bytes):
        return path
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the public key {path}: {exc.strerror}") from None
