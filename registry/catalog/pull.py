"""Pull: write a version's files to a directory, re-hashing every byte, published with one rename.

The directory is assembled in a temporary sibling and renamed into place, so it appears complete
or not at all; a blob that is missing or whose bytes no longer hash to its name fails the pull and
nothing is written to the destination.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._io import (
    Progress,
    atomic_write_bytes,
    check_output_dir,
    fsync_dir,
    output_failure,
    publish_dir,
    temporary_sibling_dir,
)
from registry.catalog.resolve import check_push_record, resolve, state_of
from registry.catalog.results import PullResult
from registry.domain.actor import Actor
from registry.domain.adapterdir import PROVENANCE_FILE
from registry.domain.refs import Ref
from registry.domain.versions import FileEntry, Manifest
from registry.errors import BlobMissing, IntegrityError, PermissionDenied
from registry.storage.blobs.base import BlobStore

if TYPE_CHECKING:
    from registry.catalog.service import Catalog

__all__ = ["export_files", "publish_pull", "pull"]


def pull(
    catalog: Catalog,
    actor: Actor,
    ref: Ref,
    out: str | os.PathLike[str],
    force: bool = False,
    progress: Progress | None = None,
    registry_info: Mapping[str, Any] | None = None,
    allow_revoked: bool = False,
) -> PullResult:
    with catalog.store.read() as records:
        version = resolve(records, ref, catalog.identity.access(records, actor))
        check_push_record(records, version)
        if not allow_revoked and state_of(records, version) == "revoked":
            revoked = [t for t in records.transitions([version.id]).get(version.id, []) if t.to_state == "revoked"][-1]
            raise PermissionDenied(
                f"{ref} ({version.digest[:19]}…) was revoked at {revoked.at} by {revoked.actor}: {revoked.reason}; "
                "it must not be served. Pass --allow-revoked to pull it anyway (for investigation)"
            )
    manifest = version.manifest()
    target = Path(out).expanduser().absolute()
    check_output_dir(target, force)

    def fill(tmp: Path) -> None:
        export_files(catalog.blobs, manifest, tmp, progress, shown_target=target)

    origin = dict(registry_info or {})
    publish_pull(target, fill, ref, manifest.name, manifest.version, version.digest, origin, catalog.clock, actor.name, manifest.files)  # fmt: skip
    return PullResult(
        name=manifest.name, version=manifest.version, digest=version.digest, path=target, files=manifest.files
    )


def publish_pull(
    target: Path,
    fill: Callable[[Path], None],
    ref: object,
    name: str,
    version: int,
    digest: str,
    registry: Mapping[str, Any],
    clock: Callable[[], str],
    by: str,
    files: tuple[FileEntry, ...],
) -> None:
    """Assemble a pulled version in a temporary sibling of ``target`` (``fill`` writes its files there),
    add its provenance record (pulled at ``clock()``, once the files are written), and rename it into place; a full disk or a read-only destination is
    answered with its own error, and nothing half-written is left at ``target``."""
    try:
        with temporary_sibling_dir(target) as tmp:
            fill(tmp)
            provenance = {
                "ref": str(ref), "name": name, "version": version, "digest": digest, "registry": dict(registry),
                "pulled_at": clock(), "pulled_by": by, "files": [f.to_dict() for f in files],
            }  # fmt: skip
            atomic_write_bytes(tmp / PROVENANCE_FILE, json.dumps(provenance, indent=2).encode("utf-8") + b"\n")
            publish_dir(tmp, target)
    except OSError as exc:
        failure = output_failure(exc, target)
        if failure is None:
            raise
        raise failure from None


def export_files(
    blobs: BlobStore,
    manifest: Manifest,
    directory: Path,
    progress: Progress | None = None,
    shown_target: Path | None = None,
) -> None:
    """Write a version's files into ``directory``, re-hashing each; raise IntegrityError on any mismatch."""
    label = f"{manifest.name}:{manifest.version}"
    for entry in manifest.files:
        _export(blobs, entry, directory, label, shown_target or directory, progress)
    for d in {(directory / e.path).parent for e in manifest.files}:
        fsync_dir(d)


def _export(blobs: BlobStore, entry: FileEntry, tmp: Path, label: str, target: Path, progress: Progress | None) -> None:
    dst = tmp / entry.path
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        sha, size = blobs.export(entry.sha256, dst, progress, entry.path)
    except BlobMissing:
        raise IntegrityError(
            f"{label}: blob {entry.sha256} for {entry.path} is missing from the blob store "
            f"{blobs.url}; nothing was written to {target}. Restore the store from a backup",
            path=entry.path,
        ) from None
    if sha != entry.sha256 or size != entry.size:
        raise IntegrityError(
            f"{label}: {entry.path} is corrupted in the blob store (expected sha256 {entry.sha256}, "
            f"{entry.size} bytes; found {sha}, {size} bytes); nothing was written to {target}. "
            "Restore the blob from a backup or push the original files again",
            path=entry.path,
        )
