"""Which blobs the records reference, and who uses each.

A version names its blobs in its manifest (``files``: path, sha256, size), which is what a pull
hands out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from registry.maintenance.results import BlobUse

__all__ = ["blob_uses", "version_ref"]

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
