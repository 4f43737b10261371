"""The blob store contract: content-addressed bytes, each stored once under its sha256.

Every implementation (a local directory, an S3-compatible bucket, ...) keeps the same layout
under its root, ``sha256/<first two hex digits>/<sha256 hex>``, so a store can be copied between
kinds with ordinary tools and still work. Callers never see where or how a blob is kept: they
put files in, and read blobs back as streams, byte ranges or re-hashed copies.

Method by method:

* :meth:`BlobStore.put` stores a local file and returns the sha256 and size of the bytes that
  landed, and whether they were new. Idempotent: the same bytes are kept once. A blob is
  complete or absent, never half-written, under its final name.
* :meth:`BlobStore.exists` and :meth:`BlobStore.size` ask about one blob without reading it.
* :meth:`BlobStore.open` streams a blob's bytes; :meth:`BlobStore.read_range` reads a slice
  (a safetensors header, say) without reading the rest: at most ``length`` bytes from ``start``,
  fewer (or none) where the blob ends first, so a caller that knows the size it expects can tell
  a truncated blob from a short read by the length it gets back.
* :meth:`BlobStore.export` copies a blob to a new local file and returns the sha256 and size of
  what was written, which the caller compares with what it expected: bytes handed out are always
  re-hashed, never trusted from their name.
* :meth:`BlobStore.iter_blobs` lists every stored blob (for fsck and gc); :meth:`BlobStore.info`
  asks about one (its size and when it was last written).
* :meth:`BlobStore.delete` removes a blob (only ``adapters gc`` calls it, for blobs no version
  references).
* :meth:`BlobStore.pending_uploads` lists the temporary uploads pushes started and never finished
  (``tmp/`` files locally, incomplete multipart uploads on S3); :meth:`BlobStore.abort_upload`
  removes one.

A blob a caller asks for and the store does not have raises :class:`~registry.errors.BlobMissing`;
a store that cannot be used at all raises :class:`~registry.errors.StorageError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from registry._io import Progress
from registry.errors import IntegrityError

__all__ = ["BlobInfo", "BlobStore", "PendingUpload", "StoredBlob", "blob_key", "check_sha256"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredBlob:
    """What :meth:`BlobStore.put` stored."""

    sha256: str
    size: int
    new: bool  # False when the same bytes were already stored


@dataclass(frozen=True)
class BlobInfo:
    """One blob as a listing of the store sees it."""

    sha256: str
    size: int
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class PendingUpload:
    """A temporary upload a push started and did not finish (killed, or still running)."""

    id: str  # the temporary file's name, or the multipart upload's id
    key: str  # where the bytes were going, relative to the store's root
    size: int  # bytes it holds so far
    started: float  # seconds since the epoch: when it was last written to (a file) or begun (a multipart upload)


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lower-case hex digits (a blob name), else :class:`IntegrityError`."""
    if not _HEX64.match(sha256):
        raise IntegrityError(
            f"{sha256!r} is not a sha256 hex digest, so it names no blob; the record that gave it was altered "
            "(run `adapters audit verify`)"
        )
    return sha256


def blob_key(sha256: str) -> str:
    """A blob's name relative to the store's root: ``sha256/ab/ab...``."""
    check_sha256(sha256)
    return f"sha256/{sha256[:2]}/{sha256}"


@runtime_checkable
class BlobStore(Protocol):
    """Where blobs live. See the module documentation for each method's contract."""

    #: Where the store is, for people (a path or ``s3://bucket/prefix``; never a credential).
    url: str

    def put(self, src: str | os.PathLike[str], progress: Progress | None = None, label: str = "") -> StoredBlob: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def read_range(self, sha256: str, start: int, length: int) -> bytes: ...

    def export(self, sha256: str, dst: Path, progress: Progress | None = None, label: str = "") -> tuple[str, int]: ...

    def iter_blobs(self) -> Iterator[BlobInfo]: ...

    def info(self, sha256: str) -> BlobInfo | None: ...

    def delete(self, sha256s: Iterable[str]) -> None: ...

    def pending_uploads(self) -> Iterator[PendingUpload]: ...

    def abort_upload(self, upload: PendingUpload) -> None: ...

    def close(self) -> None: ...
