"""What ``audit verify`` reads from a registry, as one value: every event and every fact row as stored.

The embedded registry builds it from its own database (:meth:`AuditExport.of`); a server sends it
to a client (``GET /api/v1/audit/export``), which rebuilds it (:meth:`AuditExport.from_dict`) and
runs the same verification over it (:func:`registry.audit.verify.verify_history`) against trust
material of its own. The export is exact: each event keeps its payload as the stored text (not
re-encoded, so an event stored non-canonically hashes as it does in the database) and each row
keeps its columns' values, so every hash the client computes is the one the server's database
gives.

The export also carries what only the server can see, marked as such: the registry key it signs
with now (a client uses it only if it is the key pinned at login), and, when asked, its check of
the blob store (the client cannot list a store it has no credentials for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.domain.audit import Event, Finding
from registry.domain.facts import FACT_TABLES
from registry.errors import InvalidInput
from registry.storage.records import Records

__all__ = ["EXPORT_SCHEMA", "AuditExport", "BlobReport"]

EXPORT_SCHEMA = "adapters.audit-export/v1"


def _plain(value: Any) -> Any:
    """A column's value as JSON carries it; what is not a JSON scalar travels as the text the fact hash uses."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass(frozen=True)
class BlobReport:
    """The blob store's check (``--blobs``) as the server made it: findings and counts."""

    findings: tuple[Finding, ...]
    summary: Mapping[str, Any]  # {mode, checked, blobs, bytes}, as AuditVerification.blobs

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary, "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BlobReport:
        summary = {k: d[k] for k in ("mode", "checked", "blobs", "bytes")}
        return cls(tuple(Finding.from_dict(f) for f in d.get("findings") or ()), summary)


@dataclass(frozen=True)
class AuditExport:
    """A registry's history as verification reads it (see the module documentation)."""

    registry_id: str
    events: tuple[Event, ...]
    rows: Mapping[str, Sequence[Mapping[str, Any]]]  # fact table -> its rows in id order
    registry_key: str | None = None  # the fingerprint of the key the registry signs with now
    registry_public_key: str | None = None  # that key (PEM): trusted only if it is the verifier's own
    blobs: BlobReport | None = field(default=None)

    @classmethod
    def of(cls, records: Records, registry_id: str) -> AuditExport:
        """The history in ``records`` (one read transaction: events and rows are one consistent state)."""
        events = tuple(records.events())
        rows = {t: [{k: _plain(v) for k, v in r.items()} for r in records.fact_rows(t)] for t in FACT_TABLES}
        return cls(registry_id, events, rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": EXPORT_SCHEMA,
            "registry_id": self.registry_id,
            "registry_key": self.registry_key,
            "registry_public_key": self.registry_public_key,
            "events": [
                [e.seq, e.at, e.actor, e.action, e.subject, e.payload, e.prev_hash, e.hash] for e in self.events
            ],
            "rows": {t: [dict(r) for r in rs] for t, rs in self.rows.items()},
            "blobs": self.blobs.to_dict() if self.blobs is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditExport:
        if d.get("schema") != EXPORT_SCHEMA:
            raise InvalidInput(
                f"the server sent an audit export of schema {d.get('schema')!r}, not {EXPORT_SCHEMA}: "
                "is this client the server's version?"
            )
        try:
            events = tuple(
                Event(int(e[0]), str(e[1]), str(e[2]), str(e[3]), str(e[4]), str(e[5]), str(e[6]), str(e[7]))
                for e in d["events"]
            )
            rows = {str(t): [dict(r) for r in rs] for t, rs in d["rows"].items()}
            blobs = BlobReport.from_dict(d["blobs"]) if d.get("blobs") else None
        except (KeyError, IndexError, TypeError, ValueError):
            raise InvalidInput(
                "the server's audit export lacks a field; is this client the server's version?"
            ) from None
        key, pem = d.get("registry_key"), d.get("registry_public_key")
        return cls(
            str(d["registry_id"]),
            events,
            rows,
            None if key is None else str(key),
            None if pem is None else str(pem),
            blobs,
        )

    def with_server_view(
        self, registry_key: str | None, registry_public_key: str | None, blobs: BlobReport | None
    ) -> AuditExport:
        return AuditExport(self.registry_id, self.events, self.rows, registry_key, registry_public_key, blobs)
