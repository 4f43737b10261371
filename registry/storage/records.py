"""Reading governance records back: states, transitions, approvals, channel moves.

State is never stored; it is derived here from the append-only records (a version's
state is its latest transition's ``to_state``; a channel's target is its latest move).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from registry.domain import signing
from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord
from registry.storage.tables import (
    AdapterRow,
    ApprovalRow,
    ChannelMoveRow,
    TransitionRow,
    VerificationRow,
    VersionRow,
)

__all__ = [
    "approval_record",
    "approvals",
    "channel_moves",
    "channel_names",
    "channel_target",
    "current_channels",
    "eval_record",
    "released_channels",
    "signature_valid",
    "transitions",
    "verification_reports",
    "version_states",
]

_TRANSITIONS = TransitionRow.__table__  # type: ignore[attr-defined]
_APPROVALS = ApprovalRow.__table__  # type: ignore[attr-defined]
_MOVES = ChannelMoveRow.__table__  # type: ignore[attr-defined]
_VERSIONS = VersionRow.__table__  # type: ignore[attr-defined]
_ADAPTERS = AdapterRow.__table__  # type: ignore[attr-defined]
_VERIFICATIONS = VerificationRow.__table__  # type: ignore[attr-defined]

KeyLookup = Callable[[Session, str], dict[str, bytes]]


def version_states(session: Session, version_ids: Sequence[int]) -> dict[int, str]:
    """Each version's state: its latest transition's target, or ``draft``."""
    latest = select(func.max(_TRANSITIONS.c.id)).group_by(_TRANSITIONS.c.version_id)
    rows = session.execute(
        select(_TRANSITIONS.c.version_id, _TRANSITIONS.c.to_state).where(_TRANSITIONS.c.id.in_(latest))
    ).all()
    known = {r.version_id: r.to_state for r in rows}
    return {vid: known.get(vid, "draft") for vid in version_ids}


def verification_reports(session: Session, version_id: int) -> tuple[VerificationReport, ...]:
    """A version's verification reports, oldest first."""
    rows = session.execute(
        select(_VERIFICATIONS.c.id, _VERIFICATIONS.c.report)
        .where(_VERIFICATIONS.c.version_id == version_id)
        .order_by(_VERIFICATIONS.c.id)
    ).all()
    return tuple(VerificationReport.from_dict(json.loads(r.report), id=r.id) for r in rows)


def eval_record(row: Any) -> EvalRecord:
    return EvalRecord(row.metric, row.value, row.dataset, row.recorded_at, row.recorded_by, row.source)


def approval_record(row: Any, signature_valid: bool | None) -> ApprovalRecord:
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
        signature_valid=signature_valid,
    )


def signature_valid(public: bytes | None, payload: str | None, signature: str | None) -> bool | None:
    """None when unsigned; else whether ``signature`` is the signer's (``public``) over ``payload``."""
    if not signature:
        return None
    return bool(public and payload and signing.verify(public, payload.encode("utf-8"), signature))


def transitions(session: Session, version_id: int) -> list[TransitionRecord]:
    rows = session.execute(
        select(_TRANSITIONS).where(_TRANSITIONS.c.version_id == version_id).order_by(_TRANSITIONS.c.id)
    ).all()
    return [
        TransitionRecord(
            action=r.action,
            from_state=r.from_state,
            to_state=r.to_state,
            actor=r.actor,
            at=r.at,
            reason=r.reason,
            policy_digest=r.policy_digest,
        )
        for r in rows
    ]


def _signature_valid(
    session: Session, keys: KeyLookup, actor: str, fingerprint: str | None, payload: str | None, signature: str | None
) -> bool | None:
    if not signature:
        return None
    return signature_valid(keys(session, actor).get(fingerprint or ""), payload, signature)


def approvals(session: Session, version_id: int, keys: KeyLookup) -> list[ApprovalRecord]:
    rows = session.execute(
        select(_APPROVALS).where(_APPROVALS.c.version_id == version_id).order_by(_APPROVALS.c.id)
    ).all()
    return [
        approval_record(r, _signature_valid(session, keys, r.actor, r.key_fingerprint, r.signed_payload, r.signature))
        for r in rows
    ]


def channel_target(session: Session, adapter_id: int, channel: str) -> int | None:
    """The version id a channel points to now, or None if it was never released."""
    value = session.execute(
        select(_MOVES.c.version_id)
        .where(_MOVES.c.adapter_id == adapter_id, _MOVES.c.channel == channel)
        .order_by(_MOVES.c.id.desc())
        .limit(1)
    ).scalar()
    return int(value) if value is not None else None


def channel_moves(session: Session, adapter_id: int, keys: KeyLookup, channel: str | None = None) -> list[ChannelMove]:
    """Every release and rollback of an adapter (optionally one channel), oldest first."""
    version = _VERSIONS.alias("v")
    previous = _VERSIONS.alias("p")
    query = (
        select(_MOVES, _ADAPTERS.c.name, version.c.number, version.c.digest, previous.c.number.label("previous_number"))
        .join(_ADAPTERS, _ADAPTERS.c.id == _MOVES.c.adapter_id)
        .join(version, version.c.id == _MOVES.c.version_id)
        .outerjoin(previous, previous.c.id == _MOVES.c.previous_version_id)
        .where(_MOVES.c.adapter_id == adapter_id)
        .order_by(_MOVES.c.id)
    )
    if channel is not None:
        query = query.where(_MOVES.c.channel == channel)
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
            signature_valid=_signature_valid(session, keys, r.actor, r.key_fingerprint, r.signed_payload, r.signature),
            details=json.loads(r.details) if r.details else None,
        )
        for r in session.execute(query).all()
    ]


def released_channels(session: Session, version_id: int) -> set[str]:
    """Channels this version was ever released to."""
    rows = session.execute(
        select(_MOVES.c.channel).where(_MOVES.c.version_id == version_id, _MOVES.c.action == "release")
    ).all()
    return {r.channel for r in rows}


def channel_names(session: Session, adapter_id: int) -> list[str]:
    """Every channel an adapter was ever released to."""
    rows = session.execute(select(_MOVES.c.channel).where(_MOVES.c.adapter_id == adapter_id).distinct()).all()
    return sorted(r.channel for r in rows)


def current_channels(session: Session, adapter_id: int, version_id: int) -> list[str]:
    """Channels whose current target is this version."""
    return [c for c in channel_names(session, adapter_id) if channel_target(session, adapter_id, c) == version_id]
