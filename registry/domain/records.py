"""Governance records as the registry keeps them: appended, never edited."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ApprovalRecord", "ChannelMove", "TransitionRecord"]


@dataclass(frozen=True)
class ApprovalRecord:
    """An approval or rejection. ``signature_valid`` is None when it was not signed."""

    actor: str
    decision: str  # "approve" or "reject"
    roles: tuple[str, ...]
    at: str
    comment: str | None = None
    policy_digest: str | None = None
    key_fingerprint: str | None = None
    signature_valid: bool | None = None
    signature: str | None = None
    signed_payload: str | None = None
    signature_note: str | None = None  # why a signature is not valid (what it signed instead)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "decision": self.decision,
            "roles": list(self.roles),
            "at": self.at,
            "comment": self.comment,
            "policy_digest": self.policy_digest,
            "key_fingerprint": self.key_fingerprint,
            "signature": self.signature,
            "signed_payload": self.signed_payload,
            "signature_valid": self.signature_valid,
            "signature_note": self.signature_note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApprovalRecord:
        fields: dict[str, Any] = {k: d.get(k) for k in _optional(cls)}
        return cls(actor=d["actor"], decision=d["decision"], roles=tuple(d["roles"]), at=d["at"], **fields)


@dataclass(frozen=True)
class TransitionRecord:
    """A change of lifecycle state."""

    action: str
    from_state: str
    to_state: str
    actor: str
    at: str
    reason: str | None = None
    policy_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "from": self.from_state,
            "to": self.to_state,
            "actor": self.actor,
            "at": self.at,
            "reason": self.reason,
            "policy_digest": self.policy_digest,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TransitionRecord:
        return cls(d["action"], d["from"], d["to"], d["actor"], d["at"], d.get("reason"), d.get("policy_digest"))


@dataclass(frozen=True)
class ChannelMove:
    """A release or rollback: the channel now points to ``version`` (it pointed to ``previous``)."""

    id: int
    name: str
    channel: str
    action: str  # "release" or "rollback"
    version: int
    previous: int | None
    actor: str
    at: str
    digest: str
    reason: str | None = None
    policy_digest: str | None = None
    key_fingerprint: str | None = None
    signature: str | None = None
    signed_payload: str | None = None
    signature_valid: bool | None = None
    details: dict[str, Any] | None = None
    signature_note: str | None = None  # why a signature is not valid (what it signed instead)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "channel": self.channel,
            "action": self.action,
            "version": self.version,
            "ref": f"{self.name}:{self.version}",
            "digest": self.digest,
            "previous": self.previous,
            "actor": self.actor,
            "at": self.at,
            "reason": self.reason,
            "policy_digest": self.policy_digest,
            "key_fingerprint": self.key_fingerprint,
            "signature": self.signature,
            "signed_payload": self.signed_payload,
            "signature_valid": self.signature_valid,
            "signature_note": self.signature_note,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChannelMove:
        required = ("id", "name", "channel", "action", "version", "previous", "actor", "at", "digest")
        fields: dict[str, Any] = {k: d[k] for k in required} | {k: d.get(k) for k in _optional(cls)}
        return cls(**fields)


def _optional(cls: type) -> tuple[str, ...]:
    """The fields of a record dataclass that have defaults (absent from an older answer: None)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING)
