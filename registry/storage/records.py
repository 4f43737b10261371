"""Every SELECT and INSERT of the registry's records, with typed results.

A :class:`RecordStore` opens transactions; inside one, a :class:`Records` object is the only
way to read or append a record. Services receive domain values (``EvalRecord``,
``TransitionRecord``, ``Event``, ...) or the small stored types defined here, never rows or
sessions. Loads are batched: anything asked for several versions takes one query, not one
per version, and a single version costs the same in a registry of ten versions or a million
(every lookup goes through an index on the ids asked for).

State is never stored: the records a version's state or a channel's target are folded from
come from here, the folds are in :mod:`registry.domain.state`.

Layering: storage returns the domain's value types as its typed results (there is no second,
row-shaped copy of them); the domain imports nothing from here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlmodel import Session

from registry.domain.audit import Event
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, Manifest
from registry.errors import IntegrityError
from registry.storage.db import Database
from registry.storage.tables import (
    ADAPTERS,
    APPROVALS,
    AUDIT_EVENTS,
    CHANNEL_MOVES,
    EVALS,
    POLICIES,
    PROBE_REFERENCES,
    ROLE_GRANTS,
    TRANSITIONS,
    USER_KEYS,
    USERS,
    VERIFICATIONS,
    VERSIONS,
)

__all__ = [
    "ListedVersion",
    "RecordStore",
    "Records",
    "RoleGrant",
    "StoredKey",
    "StoredPolicy",
    "StoredProbeReference",
    "StoredUser",
    "StoredVersion",
    "VersionQuery",
]

#: Ids per ``IN (...)`` list: well under every database's limit on bound parameters.
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
class ListedVersion:
    """The columns ``ls`` shows (copies of manifest facts kept for filtering), without the manifest."""

    id: int
    name: str
    number: int
    digest: str
    created_at: str
    created_by: str
    peft_type: str
    r: int | None
    base_name: str | None
    base_fingerprint: str | None
    quantization: str
    size: int


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


class Records:
    """The registry's records inside one transaction (see :class:`RecordStore`)."""

    def __init__(self, session: Session, db: Database) -> None:
        self._session = session
        self._db = db

    def _all(self, query: Any) -> list[Any]:
        return list(self._session.execute(query).all())

    def _by_version(self, table: Any, version_ids: Sequence[int], order: Any) -> Iterator[Any]:
        for chunk in _chunks(version_ids):
            yield from self._all(select(table).where(table.c.version_id.in_(chunk)).order_by(order))

    # -- adapters and versions -------------------------------------------------------------

    def adapter_id(self, name: str) -> int | None:
        value = self._session.execute(select(ADAPTERS.c.id).where(ADAPTERS.c.name == name)).scalar()
        return int(value) if value is not None else None

    def adapter_names(self) -> list[str]:
        return [r.name for r in self._all(select(ADAPTERS.c.name).order_by(ADAPTERS.c.name))]

    def create_adapter(self, name: str, at: str, by: str) -> int:
        """The adapter's id, creating it if needed (safe when several writers create it at once)."""
        self._db.insert_ignoring_conflict(
            self._session, ADAPTERS, {"name": name, "created_at": at, "created_by": by}, ["name"]
        )
        adapter_id = self.adapter_id(name)
        if adapter_id is None:  # the insert above either created it or found it
            raise IntegrityError(f"adapter {name!r} could not be created")
        return adapter_id

    def latest_number(self, adapter_id: int) -> int:
        value = self._session.execute(
            select(func.max(VERSIONS.c.number)).where(VERSIONS.c.adapter_id == adapter_id)
        ).scalar()
        return int(value or 0)

    def _versions(self) -> Select[Any]:
        return select(*_VERSION_COLUMNS).join(ADAPTERS, ADAPTERS.c.id == VERSIONS.c.adapter_id)

    def version(self, adapter_id: int, number: int) -> StoredVersion | None:
        row = self._session.execute(
            self._versions().where(VERSIONS.c.adapter_id == adapter_id, VERSIONS.c.number == number)
        ).first()
        return _stored_version(row) if row is not None else None

    def latest_version(self, adapter_id: int) -> StoredVersion | None:
        row = self._session.execute(
            self._versions().where(VERSIONS.c.adapter_id == adapter_id).order_by(VERSIONS.c.number.desc()).limit(1)
        ).first()
        return _stored_version(row) if row is not None else None

    def versions_with_digest(self, adapter_id: int, hex_prefix: str) -> list[StoredVersion]:
        rows = self._all(
            self._versions()
            .where(VERSIONS.c.adapter_id == adapter_id, VERSIONS.c.digest.like(f"sha256:{_like_pattern(hex_prefix)}%"))
            .order_by(VERSIONS.c.number)
        )
        return [_stored_version(r) for r in rows]

    def versions_by_id(self, version_ids: Sequence[int]) -> dict[int, StoredVersion]:
        out: dict[int, StoredVersion] = {}
        for chunk in _chunks(version_ids):
            for r in self._all(self._versions().where(VERSIONS.c.id.in_(chunk))):
                out[r.id] = _stored_version(r)
        return out

    def versions_of(self, names: Sequence[str] | None) -> list[StoredVersion]:
        """Every version of the named adapters (all adapters when None), by name and number."""
        query = self._versions().order_by(ADAPTERS.c.name, VERSIONS.c.number)
        if names is not None:
            query = query.where(ADAPTERS.c.name.in_(list(names)))
        return [_stored_version(r) for r in self._all(query)]

    def insert_version(self, adapter_id: int, manifest: Manifest) -> int:
        facts = manifest.peft
        statement = (
            VERSIONS.insert()
            .values(
                adapter_id=adapter_id,
                number=manifest.version,
                digest=manifest.digest,
                manifest=manifest.canonical().decode("utf-8"),
                created_at=manifest.created_at,
                created_by=manifest.created_by,
                peft_type=facts.type,
                r=facts.r,
                base_name=manifest.base.name,
                base_fingerprint=manifest.base.fingerprint,
                quantization=manifest.quantization.method,
                size=manifest.size,
            )
            .returning(VERSIONS.c.id)
        )
        return int(self._session.execute(statement).scalar_one())

    def list_versions(self, q: VersionQuery) -> list[ListedVersion]:
        v, a = VERSIONS, ADAPTERS
        query = select(
            v.c.id, a.c.name, v.c.number, v.c.digest, v.c.created_at, v.c.created_by, v.c.peft_type, v.c.r,
            v.c.base_name, v.c.base_fingerprint, v.c.quantization, v.c.size,
        ).join(a, a.c.id == v.c.adapter_id)  # fmt: skip
        if q.pattern:
            if any(c in q.pattern for c in "*?"):
                query = query.where(a.c.name.like(_like_pattern(q.pattern), escape="\\"))
            else:
                query = query.where(
                    or_(a.c.name == q.pattern, a.c.name.like(_like_pattern(q.pattern) + "/%", escape="\\"))
                )
        if q.base:
            fp = q.base.lower().removeprefix("sha256:")
            query = query.where(
                or_(v.c.base_name == q.base, v.c.base_fingerprint.like(f"sha256:{_like_pattern(fp)}%", escape="\\"))
            )
        if q.peft_type:
            query = query.where(v.c.peft_type == q.peft_type.upper())
        if q.min_rank is not None:
            query = query.where(v.c.r >= q.min_rank)
        if q.max_rank is not None:
            query = query.where(v.c.r <= q.max_rank)
        if q.quantization:
            query = query.where(v.c.quantization == q.quantization.lower())
        if q.latest:
            other = VERSIONS.alias("other")
            latest = select(func.max(other.c.number)).where(other.c.adapter_id == v.c.adapter_id).scalar_subquery()
            query = query.where(v.c.number == latest)
        rows = self._session.execute(query.order_by(a.c.name, v.c.number)).all()
        return [ListedVersion(*r) for r in rows]

    # -- evals, verifications, probe references -------------------------------------------------

    def insert_evals(self, version_id: int, evals: Sequence[EvalRecord]) -> None:
        if evals:
            self._session.execute(
                EVALS.insert(),
                [
                    {
                        "version_id": version_id,
                        "metric": e.metric,
                        "value": e.value,
                        "dataset": e.dataset,
                        "recorded_at": e.recorded_at,
                        "recorded_by": e.recorded_by,
                        "source": e.source,
                    }
                    for e in evals
                ],
            )

    def evals(self, version_ids: Sequence[int]) -> dict[int, list[EvalRecord]]:
        out: dict[int, list[EvalRecord]] = defaultdict(list)
        for r in self._by_version(EVALS, version_ids, EVALS.c.id):
            out[r.version_id].append(_eval(r))
        return out

    def insert_verification(self, version_id: int, report: VerificationReport) -> int:
        statement = (
            VERIFICATIONS.insert()
            .values(
                version_id=version_id,
                created_at=report.created_at,
                created_by=report.created_by,
                mode=report.mode,
                passed=report.passed,
                base_fingerprint=report.base_fingerprint,
                report=canonical_json(report.to_dict()).decode("utf-8"),
            )
            .returning(VERIFICATIONS.c.id)
        )
        return int(self._session.execute(statement).scalar_one())

    def verifications(self, version_ids: Sequence[int]) -> dict[int, list[VerificationReport]]:
        out: dict[int, list[VerificationReport]] = defaultdict(list)
        for r in self._by_version(VERIFICATIONS, version_ids, VERIFICATIONS.c.id):
            out[r.version_id].append(VerificationReport.from_dict(json.loads(r.report), id=r.id))
        return out

    def probe_reference(self, version_id: int, base_fingerprint: str, settings: str) -> StoredProbeReference | None:
        """The first probe reference recorded for a version, base and load setting."""
        row = self._session.execute(
            select(PROBE_REFERENCES)
            .where(
                PROBE_REFERENCES.c.version_id == version_id,
                PROBE_REFERENCES.c.base_fingerprint == base_fingerprint,
                PROBE_REFERENCES.c.settings == settings,
            )
            .order_by(PROBE_REFERENCES.c.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        return StoredProbeReference(row.id, row.sample, row.digest, row.created_at, row.created_by)

    def insert_probe_reference(
        self,
        version_id: int,
        verification_id: int,
        base_fingerprint: str,
        settings: str,
        sample: Mapping[str, Any],
        digest: str,
        at: str,
        by: str,
    ) -> None:
        self._session.execute(
            PROBE_REFERENCES.insert().values(
                version_id=version_id,
                verification_id=verification_id,
                base_fingerprint=base_fingerprint,
                settings=settings,
                sample=canonical_json(dict(sample)).decode("utf-8"),
                digest=digest,
                created_at=at,
                created_by=by,
            )
        )

    # -- lifecycle and approvals ------------------------------------------------------------------

    def insert_transition(self, version_id: int, t: TransitionRecord) -> None:
        self._session.execute(
            TRANSITIONS.insert().values(
                version_id=version_id,
                action=t.action,
                from_state=t.from_state,
                to_state=t.to_state,
                actor=t.actor,
                at=t.at,
                reason=t.reason,
                policy_digest=t.policy_digest,
            )
        )

    def transitions(self, version_ids: Sequence[int]) -> dict[int, list[TransitionRecord]]:
        """Every transition of each version, oldest first."""
        out: dict[int, list[TransitionRecord]] = defaultdict(list)
        for r in self._by_version(TRANSITIONS, version_ids, TRANSITIONS.c.id):
            out[r.version_id].append(_transition(r))
        return out

    def latest_transitions(self, version_ids: Sequence[int] | None) -> dict[int, TransitionRecord]:
        """Each version's latest transition (all versions' when None), one query per few hundred ids.

        Only the latest one decides a state (:func:`registry.domain.state.version_state`), so this is
        what listing and resolving need; the lookup uses the index on ``version_id`` for the ids asked.
        """
        groups: Iterable[list[int] | None] = [None] if version_ids is None else _chunks(version_ids)
        out: dict[int, TransitionRecord] = {}
        for chunk in groups:
            latest = select(func.max(TRANSITIONS.c.id)).group_by(TRANSITIONS.c.version_id)
            if chunk is not None:
                latest = latest.where(TRANSITIONS.c.version_id.in_(chunk))
            for r in self._all(select(TRANSITIONS).where(TRANSITIONS.c.id.in_(latest))):
                out[r.version_id] = _transition(r)
        return out

    def insert_approval(self, version_id: int, a: ApprovalRecord) -> None:
        self._session.execute(
            APPROVALS.insert().values(
                version_id=version_id,
                decision=a.decision,
                actor=a.actor,
                roles=",".join(a.roles),
                comment=a.comment,
                policy_digest=a.policy_digest,
                key_fingerprint=a.key_fingerprint,
                signature=a.signature,
                signed_payload=a.signed_payload,
                at=a.at,
            )
        )

    def approvals(self, version_ids: Sequence[int]) -> dict[int, list[ApprovalRecord]]:
        """Every approval and rejection of each version, oldest first (``signature_valid`` not yet known)."""
        out: dict[int, list[ApprovalRecord]] = defaultdict(list)
        for r in self._by_version(APPROVALS, version_ids, APPROVALS.c.id):
            out[r.version_id].append(_approval(r))
        return out

    # -- channels -----------------------------------------------------------------------------------

    def insert_move(self, adapter_id: int, version_id: int, previous_version_id: int | None, move: ChannelMove) -> int:
        statement = (
            CHANNEL_MOVES.insert()
            .values(
                adapter_id=adapter_id,
                channel=move.channel,
                version_id=version_id,
                previous_version_id=previous_version_id,
                action=move.action,
                actor=move.actor,
                at=move.at,
                reason=move.reason,
                policy_digest=move.policy_digest,
                key_fingerprint=move.key_fingerprint,
                signature=move.signature,
                signed_payload=move.signed_payload,
                details=json.dumps(dict(move.details), sort_keys=True) if move.details else None,
            )
            .returning(CHANNEL_MOVES.c.id)
        )
        return int(self._session.execute(statement).scalar_one())

    def moves(self, adapter_ids: Sequence[int] | None, channel: str | None = None) -> list[ChannelMove]:
        """Every release and rollback of the adapters (all when None), oldest first."""
        version, previous = VERSIONS.alias("v"), VERSIONS.alias("p")
        query = (
            select(
                CHANNEL_MOVES, ADAPTERS.c.name, version.c.number, version.c.digest,
                previous.c.number.label("previous_number"),
            )
            .join(ADAPTERS, ADAPTERS.c.id == CHANNEL_MOVES.c.adapter_id)
            .join(version, version.c.id == CHANNEL_MOVES.c.version_id)
            .outerjoin(previous, previous.c.id == CHANNEL_MOVES.c.previous_version_id)
            .order_by(CHANNEL_MOVES.c.id)
        )  # fmt: skip
        if adapter_ids is not None:
            query = query.where(CHANNEL_MOVES.c.adapter_id.in_(list(adapter_ids)))
        if channel is not None:
            query = query.where(CHANNEL_MOVES.c.channel == channel)
        return [
            ChannelMove(
                id=r.id,
                name=r.name,
                channel=r.channel,
                action=r.action,
                version=r.number,
                previous=r.previous_number,
                actor=r.actor,
                at=r.at,
                digest=r.digest,
                reason=r.reason,
                policy_digest=r.policy_digest,
                key_fingerprint=r.key_fingerprint,
                signature=r.signature,
                signed_payload=r.signed_payload,
                details=json.loads(r.details) if r.details else None,
            )
            for r in self._all(query)
        ]

    # -- users, roles, keys ---------------------------------------------------------------------------

    def user_count(self) -> int:
        return int(self._session.execute(select(func.count()).select_from(USERS)).scalar_one())

    def user(self, name: str) -> StoredUser | None:
        row = self._session.execute(select(USERS).where(USERS.c.name == name)).first()
        return StoredUser(row.name, row.created_at, row.created_by) if row is not None else None

    def users(self) -> list[StoredUser]:
        return [StoredUser(r.name, r.created_at, r.created_by) for r in self._all(select(USERS).order_by(USERS.c.name))]

    def insert_user(self, name: str, at: str, by: str) -> None:
        self._session.execute(USERS.insert().values(name=name, created_at=at, created_by=by))

    def grants(self, user: str | None = None) -> list[RoleGrant]:
        """Role grants, oldest first (one user's, or everyone's when None)."""
        query = select(ROLE_GRANTS).order_by(ROLE_GRANTS.c.id)
        if user is not None:
            query = query.where(ROLE_GRANTS.c.user_name == user)
        return [RoleGrant(r.user_name, r.role, r.granted_at, r.granted_by) for r in self._all(query)]

    def insert_grant(self, grant: RoleGrant) -> None:
        self._session.execute(
            ROLE_GRANTS.insert().values(
                user_name=grant.user, role=grant.role, granted_at=grant.granted_at, granted_by=grant.granted_by
            )
        )

    def keys(self, user: str | None = None) -> list[StoredKey]:
        """Registered public keys, oldest first (one user's, or everyone's when None)."""
        query = select(USER_KEYS).order_by(USER_KEYS.c.id)
        if user is not None:
            query = query.where(USER_KEYS.c.user_name == user)
        return [
            StoredKey(r.id, r.user_name, r.public_key.encode("ascii"), r.fingerprint, r.added_at, r.added_by)
            for r in self._all(query)
        ]

    def key_owners(self, fingerprint: str) -> list[str]:
        """Users a key fingerprint was ever registered to."""
        rows = self._all(select(USER_KEYS.c.user_name).where(USER_KEYS.c.fingerprint == fingerprint).distinct())
        return sorted(r.user_name for r in rows)

    def insert_key(self, user: str, public_key: bytes, fingerprint: str, at: str, by: str) -> None:
        self._session.execute(
            USER_KEYS.insert().values(
                user_name=user, public_key=public_key.decode("ascii"), fingerprint=fingerprint, added_at=at, added_by=by
            )
        )

    # -- policies ---------------------------------------------------------------------------------------

    def latest_policy(self, scope: str) -> StoredPolicy | None:
        row = self._session.execute(
            select(POLICIES).where(POLICIES.c.scope == scope).order_by(POLICIES.c.id.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return StoredPolicy(row.id, row.scope, row.name, row.content, row.digest, row.set_at, row.set_by)

    def insert_policy(self, scope: str, name: str, content: str, digest: str, at: str, by: str) -> None:
        self._session.execute(
            POLICIES.insert().values(scope=scope, name=name, content=content, digest=digest, set_at=at, set_by=by)
        )

    # -- the audit log ------------------------------------------------------------------------------------

    def last_event(self) -> Event | None:
        row = self._session.execute(select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq.desc()).limit(1)).first()
        return _event(row) if row is not None else None

    def insert_event(self, event: Event) -> None:
        self._session.execute(
            AUDIT_EVENTS.insert().values(
                seq=event.seq,
                at=event.at,
                actor=event.actor,
                action=event.action,
                subject=event.subject,
                payload=event.payload,
                prev_hash=event.prev_hash,
                hash=event.hash,
            )
        )

    def events(self, subject: str | None = None, adapter: str | None = None) -> list[Event]:
        """Events in order: all, one subject's, or (``adapter``) an adapter's and its versions'."""
        query = select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq)
        if subject is not None:
            query = query.where(AUDIT_EVENTS.c.subject == subject)
        if adapter is not None:
            query = query.where(
                (AUDIT_EVENTS.c.subject == adapter)
                | AUDIT_EVENTS.c.subject.like(f"{_like_pattern(adapter)}:%", escape="\\")
            )
        return [_event(r) for r in self._all(query)]


class RecordStore:
    """Transactions over the metadata database (see :class:`registry.storage.db.Database`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def read(self) -> Iterator[Records]:
        with self.db.read() as session:
            yield Records(session, self.db)

    @contextmanager
    def write(self) -> Iterator[Records]:
        """The one write transaction at a time; committed when the block ends without an exception."""
        with self.db.write() as session:
            yield Records(session, self.db)
