"""``adapters fsck``: the records and the blob store agree.

* every blob a version references is in the store with the size the version records (``quick``: the
  store's listing), and, in a full check, still hashes to its name;
* every version's manifest hashes to its digest, and equals what its push event recorded (its digest
  and each file's sha256), the same check as ``adapters audit verify``
  (:func:`registry.domain.binding.check_versions`).

Each problem names what is wrong and, for a blob, every ``name:version`` and file that uses it; the
blobs present that nothing references are counted (what ``adapters gc`` would consider). Nothing is
written: fsck reads the records in one read transaction, then the store.
"""

from __future__ import annotations

from registry.domain.binding import check_versions
from registry.maintenance.blobcheck import check_blobs, requests_made
from registry.maintenance.references import blob_uses
from registry.maintenance.results import FsckResult, VersionProblem
from registry.storage.blobs.base import BlobStore
from registry.storage.records import RecordStore

__all__ = ["fsck"]


def fsck(store: RecordStore, blobs: BlobStore, quick: bool = False) -> FsckResult:
    """Check the blob store against the versions (see the module documentation)."""
    with store.read() as records:
        rows = {"versions": records.fact_rows("versions"), "adapters": records.fact_rows("adapters")}
        pushes = records.events(action="push")
    problems = [VersionProblem(f.kind, ref, f.message, f.seq) for ref, f in check_versions(pushes, rows)]
    uses, unreadable = blob_uses(rows["versions"], rows["adapters"])
    reported = {p.ref for p in problems}
    problems += [
        VersionProblem(
            "manifest-unreadable",
            ref,
            f"the manifest of {ref} cannot be read as a manifest, so which blobs it uses is unknown",
        )
        for ref in unreadable
        if ref not in reported
    ]
    before = requests_made(blobs)
    found = check_blobs(blobs, uses, full=not quick)
    after = requests_made(blobs)
    return FsckResult(
        mode="quick" if quick else "full",
        store=blobs.url,
        versions=len(rows["versions"]),
        blobs=found.blobs,
        files=found.files,
        bytes=found.bytes,
        unreferenced=found.unreferenced,
        unreferenced_bytes=found.unreferenced_bytes,
        requests=after - before if after is not None and before is not None else None,
        blob_problems=found.problems,
        version_problems=tuple(problems),
    )
