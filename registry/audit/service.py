"""The audit use cases: read the log, write a checkpoint, verify the chain, build a report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from registry.audit.log import AuditLog
from registry.audit.report.build import ReportScope, build, parse_when
from registry.audit.report.render import render
from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.catalog.resolve import adapter_id, resolve
from registry.domain.actor import Actor
from registry.domain.audit import Event
from registry.domain.clock import Clock
from registry.domain.refs import Ref
from registry.errors import InvalidInput
from registry.identity import Identity
from registry.policies import Policies
from registry.storage.records import RecordStore
from registry.types import REPORT_FORMATS

__all__ = ["Auditor"]


class Auditor:
    def __init__(self, store: RecordStore, log: AuditLog, identity: Identity, policies: Policies, clock: Clock) -> None:
        self.store = store
        self.log = log
        self.identity = identity
        self.policies = policies
        self.clock = clock

    def events(self, ref: Ref | None) -> list[Event]:
        """Events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        if ref is None:
            return self.log.events()
        with self.store.read() as records:
            if ref.version is None and ref.channel is None and ref.digest is None:
                adapter_id(records, ref.name)
                return records.events(adapter=ref.name)
            return records.events(subject=resolve(records, ref).ref)

    def checkpoint(self, actor: Actor, out: Path) -> Checkpoint:
        """Write a checkpoint of the log signed with the registry key (auditors and admins)."""
        with self.store.write() as records:
            self.identity.require(records, actor, "audit checkpoint")
        return self.log.checkpoint(out)

    def verify(self, checkpoints: Iterable[Path]) -> AuditVerification:
        return self.log.verify(list(checkpoints))

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
        with self.store.read() as records:
            data = build(records, self.policies, self.log, scope, checkpoints, registry, actor.name, self.clock)
        return render(data, format)
