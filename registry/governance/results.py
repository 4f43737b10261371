"""What governance actions and queries return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.domain.records import ChannelMove
from registry.domain.rules import RuleResult

__all__ = ["ActionResult", "ChannelState", "PolicyCheck"]


@dataclass(frozen=True)
class PolicyCheck:
    """``adapters policy check``: every rule of the active policy against one version."""

    ref: str
    channel: str | None
    policy: str
    policy_digest: str
    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "channel": self.channel,
            "policy": self.policy,
            "policy_digest": self.policy_digest,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyCheck:
        results = tuple(RuleResult.from_dict(r) for r in d["results"])
        return cls(str(d["ref"]), d.get("channel"), str(d["policy"]), str(d["policy_digest"]), results)


@dataclass(frozen=True)
class ActionResult:
    """What a governance action did."""

    action: str
    ref: str
    digest: str
    state: str
    previous_state: str
    actor: str
    at: str
    policy: str | None = None
    policy_digest: str | None = None
    channel: str | None = None
    previous: str | None = None  # for releases and rollbacks: the ref the channel pointed to before
    approvals: int | None = None
    approvals_required: int | None = None
    signed_with: str | None = None
    changed: bool = True
    results: tuple[RuleResult, ...] = ()
    details: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "ref": self.ref,
            "digest": self.digest,
            "state": self.state,
            "previous_state": self.previous_state,
            "actor": self.actor,
            "at": self.at,
            "policy": self.policy,
            "policy_digest": self.policy_digest,
            "channel": self.channel,
            "previous": self.previous,
            "approvals": self.approvals,
            "approvals_required": self.approvals_required,
            "signed_with": self.signed_with,
            "changed": self.changed,
            "results": [r.to_dict() for r in self.results],
            "details": dict(self.details) if self.details is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionResult:
        return cls(
            str(d["action"]), str(d["ref"]), str(d["digest"]), str(d["state"]), str(d["previous_state"]),
            str(d["actor"]), str(d["at"]), policy=d.get("policy"), policy_digest=d.get("policy_digest"),
            channel=d.get("channel"), previous=d.get("previous"), approvals=d.get("approvals"),
            approvals_required=d.get("approvals_required"), signed_with=d.get("signed_with"),
            changed=bool(d.get("changed", True)), results=tuple(RuleResult.from_dict(r) for r in d.get("results") or ()),
            details=d.get("details"),
        )  # fmt: skip


@dataclass(frozen=True)
class ChannelState:
    """One channel of an adapter: where it points now and every move it made."""

    name: str
    channel: str
    current: int | None
    current_digest: str | None
    current_state: str | None
    history: tuple[ChannelMove, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel": self.channel,
            "current": self.current,
            "ref": f"{self.name}:{self.current}" if self.current is not None else None,
            "digest": self.current_digest,
            "state": self.current_state,
            "history": [m.to_dict() for m in self.history],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChannelState:
        history = tuple(ChannelMove.from_dict(m) for m in d.get("history") or ())
        return cls(str(d["name"]), str(d["channel"]), d.get("current"), d.get("digest"), d.get("state"), history)
