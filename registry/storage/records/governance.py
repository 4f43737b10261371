"""Lifecycle transitions, approvals, channel moves and policies."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select

from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
from registry.storage.records._base import (
    Queries,
    StoredPolicy,
    _approval,
    _chunks,
    _transition,
)
from registry.storage.tables import (
    ADAPTERS,
    APPROVALS,
    CHANNEL_MOVES,
    POLICIES,
    TRANSITIONS,
    VERSIONS,
)

__all__ = ["GovernanceQueries"]


class GovernanceQueries(Queries):
    # -- lifecycle and approvals ------------------------------------------------------------------

    def insert_transition(self, version_id: int, t: TransitionRecord) -> None:
        self._insert_fact(
            TRANSITIONS,
            {
                "version_id": version_id,
                "action": t.action,
                "from_state": t.from_state,
                "to_state": t.to_state,
                "actor": t.actor,
                "at": t.at,
                "reason": t.reason,
                "policy_digest": t.policy_digest,
            },
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
        self._insert_fact(
            APPROVALS,
            {
                "version_id": version_id,
                "decision": a.decision,
                "actor": a.actor,
                "roles": ",".join(a.roles),
                "comment": a.comment,
                "policy_digest": a.policy_digest,
                "key_fingerprint": a.key_fingerprint,
                "signature": a.signature,
                "signed_payload": a.signed_payload,
                "at": a.at,
            },
        )

    def approvals(self, version_ids: Sequence[int]) -> dict[int, list[ApprovalRecord]]:
        """Every approval and rejection of each version, oldest first (``signature_valid`` not yet known)."""
        out: dict[int, list[ApprovalRecord]] = defaultdict(list)
        for r in self._by_version(APPROVALS, version_ids, APPROVALS.c.id):
            out[r.version_id].append(_approval(r))
        return out

    # -- channels -----------------------------------------------------------------------------------

    def insert_move(self, adapter_id: int, version_id: int, previous_version_id: int | None, move: ChannelMove) -> int:
        row = self._insert_fact(
            CHANNEL_MOVES,
            {
                "adapter_id": adapter_id,
                "channel": move.channel,
                "version_id": version_id,
                "previous_version_id": previous_version_id,
                "action": move.action,
                "actor": move.actor,
                "at": move.at,
                "reason": move.reason,
                "policy_digest": move.policy_digest,
                "key_fingerprint": move.key_fingerprint,
                "signature": move.signature,
                "signed_payload": move.signed_payload,
                "details": json.dumps(dict(move.details), sort_keys=True) if move.details else None,
            },
        )
        return int(row.id)

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

    # -- policies ---------------------------------------------------------------------------------------

    def latest_policy(self, scope: str) -> StoredPolicy | None:
        row = self._session.execute(
            select(POLICIES).where(POLICIES.c.scope == scope).order_by(POLICIES.c.id.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return StoredPolicy(row.id, row.scope, row.name, row.content, row.digest, row.set_at, row.set_by)

    def insert_policy(self, scope: str, name: str, content: str, digest: str, at: str, by: str) -> None:
        self._insert_fact(
            POLICIES, {"scope": scope, "name": name, "content": content, "digest": digest, "set_at": at, "set_by": by}
        )
