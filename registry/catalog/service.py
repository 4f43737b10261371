"""The catalog: push, pull, list, show and resolve versions.

Push stores every file as a blob first (durable, deduplicated), then records the version in one
short write transaction, so a version row never exists without its bytes (:mod:`.push`). Pull
re-hashes every byte it hands out and publishes the output directory with a rename, so it appears
complete or not at all (:mod:`.pull`). Static verification reads a version's config and safetensors
headers by ranges, never its weights (:mod:`.headers`). Listing and showing read records only, never the blob store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry._io import Progress
from registry.audit.log import AuditLog
from registry.catalog import pull as pulling
from registry.catalog import push as pushing
from registry.catalog.headers import read_stored_adapter
from registry.catalog.resolve import resolve, state_of
from registry.catalog.results import ListFilter, PullResult, PushResult
from registry.domain.actor import Actor
from registry.domain.adapterdir import AdapterContents
from registry.domain.annotations import current_tags
from registry.domain.clock import Clock
from registry.domain.lineage import Evaluation, PushMetadata
from registry.domain.refs import Ref
from registry.domain.signing import Signer
from registry.domain.state import channel_targets_by_adapter, channels_pointing_to
from registry.domain.versions import EvalRecord, Manifest, VersionInfo, VersionSummary
from registry.errors import InvalidInput, InvalidMetadata
from registry.filehashes import FileHashCache
from registry.identity import Identity
from registry.policies import active_policy
from registry.storage.blobs.base import BlobStore
from registry.storage.records import RecordStore, VersionQuery
from registry.types import STATES

__all__ = ["Catalog"]


class Catalog:
    """Versions in, versions out."""

    def __init__(
        self,
        store: RecordStore,
        blobs: BlobStore,
        hashes: FileHashCache,
        identity: Identity,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.hashes = hashes
        self.identity = identity
        self.audit = audit
        self.clock = clock

    def push(
        self,
        actor: Actor,
        source: str | os.PathLike[str],
        name: str,
        meta: PushMetadata,
        progress: Progress | None = None,
    ) -> PushResult:
        return pushing.push(self, actor, source, name, meta, progress)

    def pull(
        self,
        actor: Actor,
        ref: Ref,
        out: str | os.PathLike[str],
        force: bool = False,
        progress: Progress | None = None,
        registry_info: Mapping[str, Any] | None = None,
        allow_revoked: bool = False,
    ) -> PullResult:
        return pulling.pull(self, actor, ref, out, force, progress, registry_info, allow_revoked)

    def export_files(
        self, manifest: Manifest, directory: Path, progress: Progress | None = None, shown_target: Path | None = None
    ) -> None:
        """Write a version's files into ``directory``, re-hashing each (see :func:`.pull.export_files`)."""
        pulling.export_files(self.blobs, manifest, directory, progress, shown_target)

    def read_headers(self, manifest: Manifest) -> AdapterContents:
        """A version's config, facts and tensors, read from its blobs by ranges, the weights never
        (see :func:`.headers.read_stored_adapter`)."""
        return read_stored_adapter(self.blobs, manifest)

    def add_evals(
        self, actor: Actor, ref: Ref, evals: Sequence[Evaluation], signer: Signer | None = None
    ) -> tuple[str, tuple[EvalRecord, ...]]:
        """Append evaluation results to a version (they never replace earlier ones); signed by the actor
        when the policy in force requires signatures."""
        if not evals:
            raise InvalidMetadata("give at least one --metric NAME=VALUE", "evals")
        with self.store.write() as records:
            self.identity.require(records, actor, "eval add", ref.name)
            version = resolve(records, ref, self.identity.access(records, actor))
            at = self.clock()
            results = [e.to_dict() for e in evals]
            fields = {"action": "eval add", "ref": version.ref, "digest": version.digest, "evals": results,
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
            recorded = tuple(EvalRecord(e.metric, e.value, e.dataset, at, actor.name, "eval add") for e in evals)
            records.insert_evals(version.id, recorded)
            self.audit.append(records, actor, "eval add", version.ref, {"evals": results}, signed=signed)
        return version.ref, recorded

    def list(self, actor: Actor, flt: ListFilter) -> list[VersionSummary]:
        """The versions matching ``flt`` that ``actor`` sees, each with the channels that point to it now and
        its tags."""
        if flt.state is not None and flt.state not in STATES:
            raise InvalidInput(f"unknown state {flt.state!r}; states are {', '.join(STATES)}")
        with self.store.read() as records:
            ids: set[int] | None = None
            for key, value in flt.tags:
                found = records.tagged(key, value)
                ids = found if ids is None else ids & found
            query = VersionQuery(
                pattern=flt.pattern,
                base=flt.base,
                peft_type=flt.peft_type,
                min_rank=flt.min_rank,
                max_rank=flt.max_rank,
                quantization=flt.quantization,
                latest=flt.latest,
                state=flt.state,
                where=tuple((c.metric, c.dataset, c.op, c.value) for c in flt.where),
                version_ids=frozenset(ids) if ids is not None else None,
            )
            found_versions = records.list_versions(query)
            access = self.identity.access(records, actor)
            if access.restricted:  # only the adapters of the namespaces the actor holds a role in
                found_versions = [(vid, s) for vid, s in found_versions if access.sees(s.name)]
            if not found_versions:
                return []
            pointing: dict[tuple[str, int], list[str]] = {}
            for move in channel_targets_by_adapter(records.moves(None)):
                pointing.setdefault((move.name, move.version), []).append(move.channel)
            wanted = [vid for vid, _ in found_versions] if len(found_versions) <= 500 else None
            changes = records.tag_changes(wanted)
            out = []
            for vid, summary in found_versions:
                channels = tuple(sorted(pointing.get((summary.name, summary.version), ())))
                if flt.channel is not None and flt.channel not in channels:
                    continue
                out.append(replace(summary, channels=channels, tags=current_tags(changes.get(vid, ()))))
            return out

    def show(self, actor: Actor, ref: Ref) -> VersionInfo:
        """Every recorded fact of one version (one ``actor`` sees); costs the same in a registry of any size."""
        with self.store.read() as records:
            version = resolve(records, ref, self.identity.access(records, actor))
            manifest = version.manifest()
            keyring = self.identity.keyring(records)
            moves = keyring.moves(records.moves([version.adapter_id]))
            ids = [version.id]
            tag_changes = records.tag_changes(ids).get(version.id, [])
            return VersionInfo(
                manifest=manifest,
                digest=version.digest,
                state=state_of(records, version),
                evals=tuple(records.evals(ids).get(version.id, ())),
                verifications=tuple(records.verifications(ids).get(version.id, ())),
                approvals=keyring.approvals(records.approvals(ids).get(version.id, ()), version.ref, version.digest),
                history=tuple(records.transitions(ids).get(version.id, ())),
                channels=tuple(channels_pointing_to(moves, version.number)),
                releases=tuple(m for m in moves if m.version == version.number),
                tags=current_tags(tag_changes),
                tag_history=tuple(tag_changes),
                notes=tuple(records.notes(ids).get(version.id, ())),
            )
