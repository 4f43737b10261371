"""The stored types the record store returns, and what every group of queries shares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlmodel import Session

from registry.domain.audit import Event
from registry.domain.canonical import sha256_digest
from registry.domain.facts import FactRef, fact_hash
from registry.domain.records import ApprovalRecord, TransitionRecord
from registry.domain.versions import EvalRecord, Manifest
from registry.errors import IntegrityError
from registry.storage.db import Database
from registry.storage.tables import (
    ADAPTERS,
    TABLE_SINCE,
    VERSIONS,
)

__all__ = [
    "Queries",
    "RoleGrant",
    "RoleRevocation",
    "StoredKey",
    "StoredPolicy",
    "StoredProbeReference",
    "StoredUser",
    "StoredVersion",
    "UserRemoval",
    "VersionQuery",
]

_CHUNK = 500


@dataclass(frozen=True)
class StoredVersion:
    """A version as stored: its ids, number, digest and canonical manifest text."""

    id: int
    adapter_id: int
    name: str
    number: int
    digest: str
    manifest_json: str
    created_at: str
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.number}"

    def manifest(self) -> Manifest:
        """The manifest, after checking its text still hashes to the version's digest."""
        if sha256_digest(self.manifest_json.encode("utf-8")) != self.digest:
            raise IntegrityError(
                f"the stored record of version {self.digest} no longer matches its digest: the metadata "
                "database was altered. Restore it from a backup and run `adapters audit verify`",
                name=self.name,
                version=self.number,
            )
        return Manifest.from_json(self.manifest_json)


@dataclass(frozen=True)
class VersionQuery:
    """Filters of :meth:`Records.list_versions`; a field left None matches everything."""

    pattern: str | None = None
    base: str | None = None
    peft_type: str | None = None
    min_rank: int | None = None
    max_rank: int | None = None
    quantization: str | None = None
    latest: bool = False
    state: str | None = None
    #: (metric, dataset or None for any, operator, value): the latest value of the metric holds the comparison
    where: tuple[tuple[str, str | None, str, float], ...] = ()
    version_ids: frozenset[int] | None = None  # only these versions (e.g. those with a tag)


@dataclass(frozen=True)
class StoredUser:
    name: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class RoleGrant:
    user: str
    role: str
    granted_at: str
    granted_by: str
    id: int | None = None  # None until stored
    namespace: str | None = None  # the namespace the grant is for (schema 5); None: the whole registry


@dataclass(frozen=True)
class RoleRevocation:
    """A role grant withdrawn (the grant is ``grant_id``)."""

    grant_id: int
    user: str
    role: str
    revoked_at: str
    revoked_by: str
    reason: str | None = None


@dataclass(frozen=True)
class UserRemoval:
    user: str
    removed_at: str
    removed_by: str
    reason: str | None = None


@dataclass(frozen=True)
class StoredKey:
    """A public key registered to a user; a user's latest one is their key."""

    id: int
    user: str
    public_key: bytes  # PEM
    fingerprint: str
    added_at: str
    added_by: str


@dataclass(frozen=True)
class StoredPolicy:
    id: int
    scope: str
    name: str
    content: str
    digest: str
    set_at: str
    set_by: str


@dataclass(frozen=True)
class StoredProbeReference:
    id: int
    sample_json: str
    digest: str
    created_at: str
    created_by: str


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _like_pattern(glob: str) -> str:
    """A shell glob (``*``, ``?``) as an SQL LIKE pattern with ``\\`` as escape."""
    out = []
    for ch in glob:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


_VERSION_COLUMNS = (
    VERSIONS.c.id,
    VERSIONS.c.adapter_id,
    ADAPTERS.c.name,
    VERSIONS.c.number,
    VERSIONS.c.digest,
    VERSIONS.c.manifest,
    VERSIONS.c.created_at,
    VERSIONS.c.created_by,
)


def _stored_version(row: Any) -> StoredVersion:
    return StoredVersion(
        row.id, row.adapter_id, row.name, row.number, row.digest, row.manifest, row.created_at, row.created_by
    )


def _eval(row: Any) -> EvalRecord:
    return EvalRecord(row.metric, row.value, row.dataset, row.recorded_at, row.recorded_by, row.source)


def _transition(row: Any) -> TransitionRecord:
    return TransitionRecord(
        action=row.action,
        from_state=row.from_state,
        to_state=row.to_state,
        actor=row.actor,
        at=row.at,
        reason=row.reason,
        policy_digest=row.policy_digest,
    )


def _approval(row: Any) -> ApprovalRecord:
    return ApprovalRecord(
        actor=row.actor,
        decision=row.decision,
        roles=tuple(x for x in row.roles.split(",") if x),
        at=row.at,
        comment=row.comment,
        policy_digest=row.policy_digest,
        key_fingerprint=row.key_fingerprint,
        signature=row.signature,
        signed_payload=row.signed_payload,
    )


def _event(row: Any) -> Event:
    return Event(row.seq, row.at, row.actor, row.action, row.subject, row.payload, row.prev_hash, row.hash)


class Queries:
    """One transaction's session; each group of queries (versions, facts, governance, people, audit)
    is a mixin of this, and :class:`registry.storage.records.Records` combines them.

    Every fact row is inserted through :meth:`_insert_fact`, which reads the row back as stored and
    keeps its :class:`~registry.domain.facts.FactRef`; the audit event appended in the same
    transaction takes them (:meth:`take_facts`), and a write transaction that ends with facts no
    event took is refused (:class:`registry.storage.records.RecordStore`).
    """

    def __init__(self, session: Session, db: Database) -> None:
        self._session = session
        self._db = db
        self._facts: list[FactRef] = []

    def _exists(self, table: Table) -> bool:
        """Whether ``table`` is in this database: a table a later schema added is missing from an older
        database until its first write upgrades it (reads find such a table empty)."""
        return self._db.schema_version >= TABLE_SINCE.get(table.name, 1)

    def _insert_fact(self, table: Table, values: Mapping[str, Any]) -> Any:
        """Insert one fact row and return it as stored (its id and every column)."""
        row = self._session.execute(table.insert().values(**values).returning(*table.c)).one()
        self._facts.append(FactRef(table.name, int(row.id), fact_hash(table.name, row._asdict())))
        return row

    def _insert_facts(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [self._insert_fact(table, r) for r in rows]

    def take_facts(self) -> list[FactRef]:
        """The facts written since the last call, for the audit event that records them."""
        taken, self._facts = self._facts, []
        return taken

    @property
    def pending_facts(self) -> list[FactRef]:
        return list(self._facts)

    def _all(self, query: Any) -> list[Any]:
        return list(self._session.execute(query).all())

    def _by_version(self, table: Any, version_ids: Sequence[int], order: Any) -> Iterator[Any]:
        for chunk in _chunks(version_ids):
            yield from self._all(select(table).where(table.c.version_id.in_(chunk)).order_by(order))
