"""Which blobs the records reference: who uses each (for fsck), and what gc must keep.

A version names its blobs in its manifest (``files``: path, sha256, size) and its push event
recorded the same hashes. fsck reads the manifests, which are what a pull hands out. gc keeps every
blob either names: a manifest rewritten in the database to point at other bytes must not make gc
delete the bytes that were pushed (fsck and ``audit verify`` report the rewrite; the evidence stays).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from registry.errors import IntegrityError
from registry.maintenance.results import BlobUse
from registry.storage.records import Records

__all__ = ["blob_uses", "kept_by_records", "version_ref"]

Rows = Sequence[Mapping[str, Any]]


def version_ref(version: Mapping[str, Any], names: Mapping[int, str]) -> str:
    return f"{names.get(int(version['adapter_id']), '?')}:{version['number']}"


def _files(version: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The manifest's file entries, or None when the manifest cannot be read as one."""
    try:
        files = json.loads(str(version["manifest"])).get("files")
        entries = [{"path": str(f["path"]), "sha256": str(f["sha256"]), "size": int(f["size"])} for f in files]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return entries


def blob_uses(versions: Rows, adapters: Rows) -> tuple[dict[str, list[BlobUse]], list[str]]:
    """Every blob the versions' manifests reference, with each file that is it (in version order), and
    the refs of the versions whose manifest cannot be read (their blobs are unknown)."""
    names = {int(a["id"]): str(a["name"]) for a in adapters}
    uses: dict[str, list[BlobUse]] = {}
    unreadable = []
    for v in versions:
        ref = version_ref(v, names)
        files = _files(v)
        if files is None:
            unreadable.append(ref)
            continue
        for f in files:
            uses.setdefault(f["sha256"], []).append(BlobUse(ref, f["path"], f["size"]))
    return uses, unreadable


def kept_by_records(records: Records) -> set[str]:
    """Every sha256 a version's manifest or a push event names: the blobs gc never removes.

    Read inside gc's write transaction, so no version can be recorded in between. A manifest that
    cannot be read is refused: which blobs it needs is unknown, so nothing may be collected."""
    versions, adapters = records.fact_rows("versions"), records.fact_rows("adapters")
    uses, unreadable = blob_uses(versions, adapters)
    if unreadable:
        raise IntegrityError(
            f"the manifest of {unreadable[0]} cannot be read, so which blobs it needs is unknown; gc removed "
            "nothing. Run `adapters fsck` and `adapters audit verify`, and restore the database from a backup"
        )
    kept = set(uses)
    for push in records.events(action="push"):
        files = push.data.get("files")
        if isinstance(files, Mapping):
            kept.update(str(sha) for sha in files.values())
    return kept
