"""Push: store an adapter directory's files as blobs, then record the version in one short transaction.

Order matters for what a failure leaves behind:

1. the actor's permission is checked (read-only) before anything is read or stored, so a refused
   push writes no blob;
2. the directory is read and validated, the base fingerprinted, the datasets hashed;
3. every file is stored as a blob (durable, deduplicated);
4. one write transaction checks the permission again, confirms every blob is in the store with
   its size, allocates the version number, inserts the version and its evals and appends the
   audit event. ``adapters gc`` deletes only inside a write transaction, after reading which
   blobs versions reference, so the two cannot interleave: a blob gc removed between 3 and 4 is
   found missing here and stored again, once.

A version row therefore never exists without its bytes. A crash between 3 and 4 leaves blobs no
version references, which ``adapters gc`` removes.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from registry._io import Progress
from registry.basemodel import ResolvedBase, looks_like_hub_id, resolve_base
from registry.catalog.resolve import resolve
from registry.catalog.results import PushResult
from registry.datasets import resolve_dataset
from registry.domain.actor import Actor
from registry.domain.adapterdir import AdapterSource, PeftFacts, read_adapter_dir
from registry.domain.lineage import Dataset, PushMetadata, Quantization
from registry.domain.refs import Ref, validate_name
from registry.domain.versions import BaseModel, EvalRecord, FileEntry, Manifest, ParentRef
from registry.errors import InvalidAdapter, InvalidMetadata, NotFound, StorageError
from registry.filehashes import FileHashCache

if TYPE_CHECKING:
    from registry.catalog.service import Catalog

__all__ = ["BlobsGone", "push", "record_version", "resolve_parent", "resolve_push_base"]


def push(
    catalog: Catalog,
    actor: Actor,
    source: str | os.PathLike[str],
    name: str,
    meta: PushMetadata,
    progress: Progress | None = None,
) -> PushResult:
    validate_name(name)
    with catalog.store.read() as records:
        catalog.identity.allowed(records, actor, "push", name)
    adapter = read_adapter_dir(source)
    warnings = list(adapter.warnings)
    resolved = resolve_push_base(catalog.hashes, meta, adapter, progress)
    warnings.extend(resolved.warnings)
    datasets = tuple(resolve_dataset(d, catalog.hashes, progress) for d in meta.datasets)
    parent = resolve_parent(catalog, actor, meta.parent) if meta.parent else None

    files, new_bytes = _store_files(catalog, adapter, progress)
    try:
        manifest = record_version(catalog, actor, name, meta, adapter.facts, resolved.base, datasets, parent, files)
    except BlobsGone:  # `adapters gc` removed a blob this push found already stored: store it again, once
        files, again = _store_files(catalog, adapter, progress)
        new_bytes += again
        manifest = record_version(
            catalog, actor, name, meta, adapter.facts, resolved.base, datasets, parent, files, last_try=True
        )
    return PushResult(
        name=name,
        version=manifest.version,
        digest=manifest.digest,
        size=manifest.size,
        files=len(files),
        new_bytes=new_bytes,
        base=resolved.base,
        warnings=tuple(warnings),
    )


def record_version(
    catalog: Catalog,
    actor: Actor,
    name: str,
    meta: PushMetadata,
    facts: PeftFacts,
    base: BaseModel,
    datasets: tuple[Dataset, ...],
    parent: ParentRef | None,
    files: tuple[FileEntry, ...],
    last_try: bool = False,
) -> Manifest:
    """The one write transaction of a push: the next version number, the version, its evals, the event.

    Every blob is confirmed present with its size inside the transaction: ``adapters gc`` deletes
    only inside a write transaction too, so a version is never committed naming a blob gc removed.
    """
    with catalog.store.write() as records:
        catalog.identity.require(records, actor, "push", name)
        _confirm_blobs(catalog, files, last_try)
        at = catalog.clock()
        aid = records.create_adapter(name, at, actor.name)
        number = records.latest_number(aid) + 1
        manifest = Manifest(
            name=name,
            version=number,
            created_at=at,
            created_by=actor.name,
            description=meta.description,
            files=files,
            peft=facts,
            base=base,
            quantization=(meta.quantization or Quantization()).with_defaults(),
            datasets=datasets,
            training=meta.training,
            parent=parent,
        )
        version_id = records.insert_version(aid, manifest)
        records.insert_evals(
            version_id, [EvalRecord(e.metric, e.value, e.dataset, at, actor.name, "push") for e in meta.evals]
        )
        catalog.audit.append(
            records,
            actor,
            "push",
            f"{name}:{number}",
            {
                "digest": manifest.digest,
                "files": {f.path: f.sha256 for f in files},
                "base": manifest.base.fingerprint or manifest.base.name,
                "evals": [e.to_dict() for e in meta.evals],
            },
        )
    return manifest


class BlobsGone(Exception):
    """Blobs a push stored (or found stored) are no longer in the store when it commits."""


def _confirm_blobs(catalog: Catalog, files: tuple[FileEntry, ...], last_try: bool) -> None:
    sizes = {f.sha256: f.size for f in files}
    gone = [f.path for f in files if catalog.blobs.size(f.sha256) != sizes[f.sha256]]
    if not gone:
        return
    if not last_try:
        raise BlobsGone()
    raise StorageError(
        f"{', '.join(gone)} vanished from the blob store {catalog.blobs.url} before the version could be recorded "
        "(removed by `adapters gc` or by hand); nothing was recorded. Push again"
    )


def resolve_push_base(
    hashes: FileHashCache, meta: PushMetadata, adapter: AdapterSource, progress: Progress | None
) -> ResolvedBase:
    """The base as found on this machine, named by its id where one is known; a base directory without
    weight files is refused unless ``allow_unverified_base`` (then recorded as unverified)."""
    resolved = _named(_find_base(hashes, meta, adapter, progress), meta, adapter)
    if resolved.directory is None or resolved.base.fingerprint is not None:
        return resolved
    base = resolved.base
    if not meta.allow_unverified_base:
        raise InvalidMetadata(
            f"base {base.name} has no weight files (*.safetensors, *.bin, ...) in {resolved.directory}, so nothing "
            "could later prove which weights this adapter was trained on; nothing was stored. Pass the directory "
            "that holds the base's weights, or --allow-unverified-base to push it without a fingerprint (recorded)",
            "base",
        )
    note = (
        f"--allow-unverified-base: base {base.name} has no weight files in {resolved.directory}; the version is "
        "recorded with no fingerprint and marked unverified"
    )
    return replace(resolved, base=replace(base, unverified=True), warnings=(*resolved.warnings, note))


def _find_base(
    hashes: FileHashCache, meta: PushMetadata, adapter: AdapterSource, progress: Progress | None
) -> ResolvedBase:
    if meta.base:
        return resolve_base(meta.base, meta.base_revision, hashes, progress, name=meta.base_name)
    recorded = adapter.facts.base_model_name_or_path
    if not recorded:
        if meta.base_name:
            return ResolvedBase(
                base=BaseModel(name=meta.base_name, revision=meta.base_revision, source="unresolved"),
                directory=None,
                warnings=(f"base {meta.base_name} is recorded by name only: pass --base DIR to fingerprint it",),
            )
        return ResolvedBase(
            base=BaseModel(revision=meta.base_revision),
            directory=None,
            warnings=("no base model recorded: pass --base (a model directory or a Hugging Face id)",),
        )
    try:
        resolved = resolve_base(recorded, meta.base_revision, hashes, progress, name=meta.base_name)
    except NotFound:
        resolved = ResolvedBase(
            base=BaseModel(name=meta.base_name or recorded, revision=meta.base_revision, source="unresolved"),
            directory=None,
        )
    note = f"no --base given; using base_model_name_or_path {recorded!r} from the adapter config"
    if resolved.base.fingerprint is None and resolved.directory is None:
        note += " (not found on this machine, so no content fingerprint); pass --base to fingerprint it"
    return replace(resolved, warnings=(note,))


def _named(resolved: ResolvedBase, meta: PushMetadata, adapter: AdapterSource) -> ResolvedBase:
    """A base found only by its directory is named by the adapter config's Hub id, if it has one.

    The base's own config.json ``_name_or_path`` is not used: it often names the model the base was
    fine-tuned from (all-MiniLM-L6-v2's says nreimers/MiniLM-L6-H384-uncased), not the base.
    """
    base = resolved.base
    if meta.base_name or base.path is None or base.name != base.path:
        return resolved  # named explicitly, or by its Hub cache snapshot, or not a directory
    config_id = adapter.facts.base_model_name_or_path
    if config_id and looks_like_hub_id(config_id):
        note = (
            f"base {base.path} named {config_id!r} after the adapter config's base_model_name_or_path; "
            "pass --base-name to name it otherwise"
        )
        return replace(resolved, base=replace(base, name=config_id), warnings=(*resolved.warnings, note))
    note = (
        f"base {base.path} is named by its path, which means nothing on another machine; pass --base-name "
        "with its Hugging Face id (e.g. meta-llama/Llama-3.1-8B) to name it"
    )
    return replace(resolved, warnings=(*resolved.warnings, note))


def resolve_parent(catalog: Catalog, actor: Actor, text: str) -> ParentRef:
    with catalog.store.read() as records:
        found = resolve(records, Ref.parse(text), catalog.identity.access(records, actor))
    return ParentRef(name=found.name, version=found.number, digest=found.digest)


def _store_files(
    catalog: Catalog, adapter: AdapterSource, progress: Progress | None
) -> tuple[tuple[FileEntry, ...], int]:
    entries = []
    new_bytes = 0
    for f in adapter.files:
        blob = catalog.blobs.put(f.abspath, progress, f.path)
        st = os.stat(f.abspath)
        if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns) or blob.size != f.size:
            raise InvalidAdapter(
                f"{adapter.root / f.path} changed while it was being pushed; wait until the training job has "
                "finished writing the adapter and push again",
                str(adapter.root / f.path),
            )
        new_bytes += blob.size if blob.new else 0
        entries.append(FileEntry(path=f.path, sha256=blob.sha256, size=blob.size))
    return tuple(entries), new_bytes
