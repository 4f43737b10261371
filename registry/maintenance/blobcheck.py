"""Checking that the blobs versions reference are in the store as recorded: the one implementation
``adapters fsck`` and ``adapters audit verify --blobs`` share.

Presence and size come from the store's listing (:meth:`BlobStore.iter_blobs`): a directory scan
locally, a few LIST requests (1,000 objects each) on S3, instead of one HEAD per blob. The full
check then re-hashes every referenced blob once, however many versions share it, on a few threads
(hashing releases the GIL, and on S3 the time goes in waiting for the bytes).

Call it after reading the references: a blob is in the store before any version naming it is
recorded (push confirms it in its write transaction), so a listing taken afterwards shows every
blob those versions need, and a version recorded in between is simply not checked this time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from registry._io import CHUNK_SIZE
from registry.errors import BlobMissing
from registry.maintenance.results import BlobProblem, BlobUse
from registry.storage.blobs.base import BlobInfo, BlobStore

__all__ = ["HASH_WORKERS", "BlobCheck", "check_blobs", "requests_made"]

#: Blobs re-hashed at once in a full check.
HASH_WORKERS = 8


@dataclass(frozen=True)
class BlobCheck:
    """What :func:`check_blobs` found, and how much it looked at."""

    problems: tuple[BlobProblem, ...]
    blobs: int  # distinct blobs referenced
    files: int  # file entries referencing them
    bytes: int  # bytes of the referenced blobs found (hashed, in a full check)
    unreferenced: int  # blobs in the store that nothing referenced
    unreferenced_bytes: int


def requests_made(store: BlobStore) -> int | None:
    """How many requests the store has made so far (an object store counts them), else None."""
    stats = getattr(store, "stats", None)
    requests = getattr(stats, "requests", None)
    return requests if isinstance(requests, int) else None


def _sha256_of(store: BlobStore, sha256: str) -> str | None:
    """The sha256 of the blob's bytes as the store hands them out; None when it is gone."""
    h = hashlib.sha256()
    try:
        with store.open(sha256) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                h.update(chunk)
    except BlobMissing:
        return None
    return h.hexdigest()


def _rehash(store: BlobStore, sha256s: Sequence[str]) -> dict[str, str | None]:
    if len(sha256s) <= 1:
        return {s: _sha256_of(store, s) for s in sha256s}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="adapters-fsck") as pool:
        return dict(zip(sha256s, pool.map(lambda s: _sha256_of(store, s), sha256s), strict=True))


def check_blobs(store: BlobStore, uses: Mapping[str, Sequence[BlobUse]], full: bool) -> BlobCheck:
    """Every referenced blob against the store's listing (and re-hashed, when ``full``): one problem per
    blob, naming every file that uses it."""
    listing: dict[str, BlobInfo] = {b.sha256: b for b in store.iter_blobs()}
    problems: dict[str, BlobProblem] = {}
    present: list[str] = []
    for sha256, used in sorted(uses.items()):
        stored = listing.get(sha256)
        if stored is None:
            problems[sha256] = BlobProblem("blob-missing", sha256, tuple(used), store.url)
            continue
        wrong = tuple(u for u in used if u.size != stored.size)
        if wrong:
            problems[sha256] = BlobProblem("blob-size", sha256, wrong, store.url, stored.size)
            continue
        present.append(sha256)
    if full:
        for sha256, actual in _rehash(store, present).items():
            if actual is None:  # removed since the listing (by hand: gc never removes a referenced blob)
                problems[sha256] = BlobProblem("blob-missing", sha256, tuple(uses[sha256]), store.url)
            elif actual != sha256:
                problems[sha256] = BlobProblem(
                    "blob-corrupted", sha256, tuple(uses[sha256]), store.url, listing[sha256].size
                )
    unreferenced = [b for sha256, b in listing.items() if sha256 not in uses]
    return BlobCheck(
        problems=tuple(problems[s] for s in sorted(problems)),
        blobs=len(uses),
        files=sum(len(u) for u in uses.values()),
        bytes=sum(listing[s].size for s in present),
        unreferenced=len(unreferenced),
        unreferenced_bytes=sum(b.size for b in unreferenced),
    )
