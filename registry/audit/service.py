"""The audit use cases: read the log, write a checkpoint, verify the chain, build a report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from registry.audit.export import AuditExport
from registry.audit.log import AuditLog
from registry.audit.report.build import ReportScope, build, gather, parse_when
from registry.audit.report.render import render
from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.audit.trust import TrustAnchor, initialise
from registry.audit.verify import BLOB_MODES, check_blob_store, verify_registry
from registry.catalog.headers import read_stored_adapter
from registry.catalog.resolve import adapter_id, resolve
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.adapterdir import AdapterContents
from registry.domain.audit import Event
from registry.domain.clock import Clock
from registry.domain.refs import Ref
from registry.domain.versions import Manifest
from registry.errors import InvalidInput, PermissionDenied, RegistryError
from registry.identity import Identity
from registry.policies import Policies
from registry.storage.blobs.base import BlobStore
from registry.storage.records import Records, RecordStore
from registry.types import REPORT_FORMATS

__all__ = ["Auditor"]


class Auditor:
    def __init__(
        self,
        store: RecordStore,
        log: AuditLog,
        identity: Identity,
        policies: Policies,
        blobs: BlobStore,
        clock: Clock,
        trust_dir: Path,
    ) -> None:
        self.store = store
        self.log = log
        self.identity = identity
        self.policies = policies
        self.blobs = blobs
        self.clock = clock
        self.trust_dir = trust_dir  # where init writes trust files by default, and verify finds them

    def events(self, actor: Actor, ref: Ref | None) -> list[Event]:
        """Events in order; ``ref`` (a name or name:N) narrows them to one adapter or version. Events about
        adapters in namespaces ``actor`` does not see are left out (and such a ``ref`` is not found)."""
        with self.store.read() as records:
            access = self.identity.access(records, actor)
            if ref is None:
                found = records.events()
                return [e for e in found if access.sees_event(e.action, e.subject)] if access.restricted else found
            if ref.version is None and ref.channel is None and ref.digest is None:
                adapter_id(records, ref.name, access)
                return records.events(adapter=ref.name)
            return records.events(subject=resolve(records, ref, access).ref)

    def checkpoint(self, actor: Actor, outs: Sequence[Path], force: bool = False) -> Checkpoint:
        """Write a checkpoint of the log signed with the registry key to each of ``outs`` (and keep a copy
        in the state directory); record it in the chain. Auditors and admins."""
        with self.store.write() as records:
            self.identity.require(records, actor, "audit checkpoint")
            checkpoint = self.log.checkpoint(records, actor, outs, force)
        self.log.write_files(checkpoint)
        return checkpoint

    def trust_file(self, trust: Path | None) -> TrustAnchor | None:
        """The trust anchor given, else the one ``init`` wrote on this machine for this registry, if any."""
        if trust is not None:
            return TrustAnchor.load(trust)
        default = self.trust_dir / f"{self.log.registry_id()}.json"
        return TrustAnchor.load(default) if default.is_file() else None

    def verify(
        self, checkpoints: Iterable[Path], trust: Path | None = None, blobs: str | None = None
    ) -> AuditVerification:
        anchor = self.trust_file(trust)
        registry_id = self.log.registry_id()
        with self.store.read() as records:
            return verify_registry(
                records, self.log.keys, registry_id, list(checkpoints), anchor, self.blobs if blobs else None, blobs
            )

    def key(self) -> dict[str, str | None]:
        public = self.log.registry_public_key()
        return {
            "registry_id": self.log.registry_id(),
            "registry_key": signing.fingerprint(public) if public else None,
            "registry_public_key": public.decode("ascii") if public else None,
        }

    def export(self, actor: Actor, blobs: str | None = None) -> AuditExport:
        """The history as verification reads it, with the registry key in use and (``blobs``: ``quick`` or
        ``full``) the blob store's check: what a server sends a client that verifies it. It holds every
        adapter's records, so an actor whose roles are all for some namespaces is refused."""
        if blobs is not None and blobs not in BLOB_MODES:
            raise InvalidInput(f"unknown blob check {blobs!r}; use {', '.join(BLOB_MODES)}")
        registry_id = self.log.registry_id()
        public = self.log.registry_public_key()
        with self.store.read() as records:
            self._whole_registry(records, actor)
            history = AuditExport.of(records, registry_id)
        report = check_blob_store(self.blobs, history.rows, blobs) if blobs is not None else None
        key = signing.fingerprint(public) if public else None
        return history.with_server_view(key, public.decode("ascii") if public else None, report)

    def _whole_registry(self, records: Records, actor: Actor) -> None:
        access = self.identity.access(records, actor)
        if access.restricted:
            raise PermissionDenied(
                f"{actor.name} holds roles only for the namespaces {', '.join(sorted(access.namespaces))}, and "
                "`audit verify` and `audit report` against the server check every adapter's history, which they do "
                "not see; they need a role for the whole registry (auditor, say): ask an admin",
                actor.name,
            )

    def init(self, admin: str, public_key: bytes, trust_out: Path | None) -> TrustAnchor:
        """Record the root of trust and write the trust file (default: the trust directory)."""
        anchor = initialise(self.store, self.log, self.clock, admin, public_key)
        return anchor.save(trust_out or self.trust_dir / f"{anchor.registry_id}.json")

    def _adapter(self, manifest: Manifest) -> AdapterContents | None:
        """A version's config and headers for the policy's ``serving`` rule; None when the blob store cannot
        give them (the report says so for that rule, and its integrity section says why)."""
        try:
            return read_stored_adapter(self.blobs, manifest)
        except RegistryError:
            return None

    def report(
        self,
        actor: Actor,
        subject: str | None,
        format: str,
        since: str | None,
        until: str | None,
        checkpoints: Iterable[Path],
        registry: Mapping[str, str],
    ) -> AuditReport:
        if format not in REPORT_FORMATS:
            raise InvalidInput(f"unknown report format {format!r}; use {', '.join(REPORT_FORMATS)}")
        scope = ReportScope(subject, parse_when(since), parse_when(until, end_of_day=True))
        integrity = self.verify(checkpoints, blobs="quick")
        with self.store.read() as records:
            access = self.identity.access(records, actor)
            data = build(
                records, self.policies, integrity, scope, registry, actor.name, self.clock, access, self._adapter
            )
        return render(data, format)

    def report_facts(self, actor: Actor, scope: ReportScope, registry: Mapping[str, str]) -> dict[str, Any]:
        """Every fact of the report but its integrity section (which the verifier adds: ``with_integrity``).
        Only for an actor who sees the whole registry: the verifier's integrity section is not narrowed."""
        with self.store.read() as records:
            self._whole_registry(records, actor)
            access = self.identity.access(records, actor)
            return gather(records, self.policies, scope, registry, actor.name, self.clock, access, self._adapter)
