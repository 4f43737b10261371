"""What ``fsck`` and ``gc`` return: frozen values, each with ``to_dict()`` (their ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from registry.domain.clock import format_iso
from registry.domain.durations import format_duration

__all__ = ["BlobProblem", "BlobUse", "FsckResult", "GcResult", "RemovedBlob", "RemovedUpload", "VersionProblem"]


def _iso(seconds: float) -> str:
    return format_iso(datetime.fromtimestamp(seconds, timezone.utc))


@dataclass(frozen=True)
class BlobUse:
    """One file of one version that is a given blob."""

    ref: str  # NAME:N
    path: str  # the file's path in the version
    size: int  # the size the version records

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "path": self.path, "size": self.size}

    def __str__(self) -> str:
        return f"{self.ref}: {self.path}"


@dataclass(frozen=True)
class BlobProblem:
    """A blob versions reference that is not in the store as they record it: one per blob, naming
    every version and file that uses it.

    ``kind``: ``blob-missing`` (not in the store), ``blob-size`` (another size than recorded: truncated,
    or other bytes put in its place), ``blob-corrupted`` (the recorded size, but its bytes no longer hash
    to its name; only a full check finds this)."""

    kind: str
    sha256: str
    uses: tuple[BlobUse, ...]
    store: str
    stored_size: int | None = None  # None when the blob is missing

    @property
    def size(self) -> int:
        """The size the versions record (of the first use: they agree unless a record was altered)."""
        return self.uses[0].size

    @property
    def message(self) -> str:
        used = f"; used by {', '.join(str(u) for u in self.uses)}"
        if self.kind == "blob-missing":
            what = f"is missing from the blob store {self.store}"
        elif self.kind == "blob-size":
            what = f"is {self.stored_size} bytes in the blob store, {self.size} recorded"
        else:
            what = "no longer hashes to its name: its bytes were changed"
        return f"blob {self.sha256} {what}{used}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sha256": self.sha256,
            "size": self.size,
            "stored_size": self.stored_size,
            "uses": [u.to_dict() for u in self.uses],
            "message": self.message,
        }


@dataclass(frozen=True)
class VersionProblem:
    """A version whose record is not what was pushed: its manifest no longer hashes to its digest
    (``manifest-edited``), or cannot be read (``manifest-unreadable``), or its digest or files differ from
    what its push event recorded (``version-changed``, ``version-files-changed``), or no push recorded
    it (``version-unrecorded``). ``seq``: the push event, where there is one."""

    kind: str
    ref: str
    message: str
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "seq": self.seq, "message": self.message}


@dataclass(frozen=True)
class FsckResult:
    """What ``adapters fsck`` found. ``ok`` is False when anything is wrong (the command exits 3)."""

    mode: str  # "quick" (the store's listing: presence and size) or "full" (every referenced blob re-hashed)
    store: str
    versions: int  # versions checked
    blobs: int  # distinct blobs they reference
    files: int  # file entries (a blob two versions share counts twice here, once in ``blobs``)
    bytes: int  # bytes of those blobs found in the store (read and hashed, in full mode)
    unreferenced: int  # blobs in the store no version references (what gc would consider)
    unreferenced_bytes: int
    requests: int | None  # requests made to the object store (S3), None for a store that does not count
    blob_problems: tuple[BlobProblem, ...] = ()
    version_problems: tuple[VersionProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.blob_problems and not self.version_problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "store": self.store,
            "checked": {"versions": self.versions, "blobs": self.blobs, "files": self.files, "bytes": self.bytes},
            "unreferenced": {"blobs": self.unreferenced, "bytes": self.unreferenced_bytes},
            "requests": self.requests,
            "problems": {
                "blobs": [p.to_dict() for p in self.blob_problems],
                "versions": [p.to_dict() for p in self.version_problems],
            },
        }


@dataclass(frozen=True)
class RemovedBlob:
    """A blob gc removed (or, in a dry run, would remove)."""

    sha256: str
    size: int
    modified: float  # when it was last written, seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "modified": _iso(self.modified)}


@dataclass(frozen=True)
class RemovedUpload:
    """An abandoned temporary upload gc removed: a ``tmp/`` file, or an incomplete multipart upload."""

    id: str
    key: str
    size: int
    started: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "size": self.size, "started": _iso(self.started)}


@dataclass(frozen=True)
class GcResult:
    """What ``adapters gc`` removed, or with ``dry_run`` would remove, and what it kept."""

    dry_run: bool
    grace: int  # seconds: only what is older than this is removed
    store: str
    at: str  # when the store was listed
    listed: int  # blobs in the store then
    young: int  # of those, written within the grace period (kept, whether or not a version uses them)
    referenced: int  # blobs older than the grace that a version references (kept)
    refreshed: int  # unreferenced blobs written again, or removed by someone else, since the listing (kept)
    blobs: tuple[RemovedBlob, ...] = ()
    uploads: tuple[RemovedUpload, ...] = ()
    event: int | None = None  # seq of the `gc` audit event; None for a dry run or when nothing was removed
    requests: int | None = None  # requests made to the object store (S3)

    @property
    def bytes_freed(self) -> int:
        return sum(b.size for b in self.blobs) + sum(u.size for u in self.uploads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace": format_duration(self.grace),
            "grace_seconds": self.grace,
            "store": self.store,
            "at": self.at,
            "listed": self.listed,
            "kept": {"young": self.young, "referenced": self.referenced, "refreshed": self.refreshed},
            "blobs": [b.to_dict() for b in self.blobs],
            "uploads": [u.to_dict() for u in self.uploads],
            "bytes_freed": self.bytes_freed,
            "event": self.event,
            "requests": self.requests,
        }
