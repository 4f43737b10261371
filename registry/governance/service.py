"""Lifecycle and release governance: review, approve, reject, release, rollback, deprecate, revoke.

Every action runs in one write transaction that checks the actor's role, the lifecycle
table and the active policy, appends its record (transition, approval, channel move)
and its audit event, or changes nothing. Approvals, rejections, releases and rollbacks
are signed with the actor's Ed25519 key when the policy requires it (or when a key is
given), and the signature must verify against the actor's registered public key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from registry.audit.log import AuditLog
from registry.catalog.service import Catalog
from registry.domain import signing
from registry.domain.clock import now_iso
from registry.domain.lifecycle import invalid_transition, next_state
from registry.domain.policy import (
    Policy,
    PolicyContext,
    RuleResult,
    approval_eligibility,
    counted_approvals,
    evaluate,
)
from registry.domain.records import ApprovalRecord, ChannelMove
from registry.domain.refs import Ref, validate_channel
from registry.errors import InvalidInput, NotFound, PermissionDenied, PolicyNotMet
from registry.governance.results import ActionResult, ChannelState, PolicyCheck
from registry.identity import Identity
from registry.policies import ActivePolicy, Policies
from registry.storage import records
from registry.storage.tables import AdapterRow, ApprovalRow, ChannelMoveRow, TransitionRow, VersionRow
from registry.verification.service import Verifier

__all__ = ["Governance"]

_TRANSITIONS = TransitionRow.__table__  # type: ignore[attr-defined]
_APPROVALS = ApprovalRow.__table__  # type: ignore[attr-defined]
_MOVES = ChannelMoveRow.__table__  # type: ignore[attr-defined]
_VERSIONS = VersionRow.__table__  # type: ignore[attr-defined]
_ADAPTERS = AdapterRow.__table__  # type: ignore[attr-defined]


@dataclass
class _Version:
    """A resolved version inside a transaction."""

    row: Any
    name: str
    adapter_id: int
    state: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.row.number}"


class Governance:
    def __init__(
        self,
        catalog: Catalog,
        verifier: Verifier,
        identity: Identity,
        policies: Policies,
        audit: AuditLog,
        key_path: Path | None,
    ) -> None:
        self.catalog = catalog
        self.verifier = verifier
        self.identity = identity
        self.policies = policies
        self.audit = audit
        self.db = catalog.db
        self.user = identity.user
        self.key_path = key_path

    # -- helpers ----------------------------------------------------------------------------

    def _version(self, session: Session, ref: Ref) -> _Version:
        row = self.catalog.resolve_row(session, ref)
        name = session.execute(select(_ADAPTERS.c.name).where(_ADAPTERS.c.id == row.adapter_id)).scalar_one()
        state = records.version_states(session, [row.id])[row.id]
        return _Version(row=row, name=name, adapter_id=row.adapter_id, state=state)

    def context(self, session: Session, v: _Version, channel: str | None = None) -> PolicyContext:
        manifest = self.catalog.manifest_of(v.row)
        author_key = self.identity.key(session, manifest.created_by)
        return PolicyContext(
            ref=v.ref,
            manifest=manifest,
            author_key=author_key[1] if author_key else None,
            evals=self.catalog.version_info(session, v.row).evals,
            verifications=records.verification_reports(session, v.row.id),
            approvals=tuple(records.approvals(session, v.row.id, self.identity.keys_by_fingerprint)),
            released_to=tuple(sorted(records.released_channels(session, v.row.id))),
            channel=channel,
        )

    def _transition(
        self, session: Session, v: _Version, action: str, to_state: str, reason: str | None, policy_digest: str | None
    ) -> str:
        at = now_iso()
        session.execute(
            _TRANSITIONS.insert().values(
                version_id=v.row.id,
                action=action,
                from_state=v.state,
                to_state=to_state,
                actor=self.user,
                at=at,
                reason=reason,
                policy_digest=policy_digest,
            )
        )
        return at

    def _signature(
        self, session: Session, policy: Policy, key: Path | None, fields: Mapping[str, Any]
    ) -> tuple[str | None, str | None, str | None]:
        """(payload, signature, key fingerprint) for an action, or Nones when it is not signed.

        Signed when the policy requires it or a key is given; the signature must verify against
        the actor's registered public key.
        """
        path = key or self.key_path
        if path is None:
            if policy.signatures_required:
                message = (
                    f"the policy requires {fields['action']} to be signed with {self.user}'s registered key: "
                    "pass --key FILE or set ADAPTERS_KEY to your private key (adapters keys generate)"
                )
                raise PolicyNotMet(
                    str(fields["action"]), str(fields["ref"]), policy, [RuleResult("signatures", False, message)]
                )
            return None, None, None
        try:
            private = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read the private key {path}: {exc.strerror or exc}") from None
        registered = self.identity.key(session, self.user)
        if registered is None:
            raise PermissionDenied(
                f"{self.user} has no registered public key, so a signature by {path} proves nothing; an admin "
                f"registers it with `adapters users add {self.user} --public-key {Path(path).with_suffix('.pub')}`",
                self.user,
            )
        public, fingerprint = registered
        payload = signing.signed_payload(fields)
        signature = signing.sign(private, payload, str(path))
        if not signing.verify(public, payload, signature):
            raise PermissionDenied(
                f"the key {path} is not {self.user}'s registered key ({fingerprint}); sign with your own key",
                self.user,
            )
        return payload.decode("utf-8"), signature, fingerprint

    # -- lifecycle ----------------------------------------------------------------------------

    def review(self, ref: Ref, comment: str | None = None) -> ActionResult:
        return self._change_state(ref, "review", comment)

    def decide(self, ref: Ref, decision: str, comment: str | None, key: Path | None) -> ActionResult:
        """Approve or reject under the registry's active policy."""
        if decision not in ("approve", "reject"):
            raise InvalidInput(f"a decision is approve or reject, not {decision!r}")
        with self.db.write() as session:
            roles = self.identity.member(session)
            v = self._version(session, ref)
            next_state(v.ref, v.state, decision)  # raises with the allowed actions
            active = self.policies.active(session)
            policy = active.policy
            ctx = self.context(session, v)
            at = now_iso()
            payload, signature, fingerprint = self._signature(
                session,
                policy,
                key,
                {
                    "action": decision,
                    "ref": v.ref,
                    "digest": v.row.digest,
                    "policy": policy.digest,
                    "actor": self.user,
                    "at": at,
                },
            )
            record = ApprovalRecord(
                actor=self.user,
                decision=decision,
                roles=tuple(sorted(roles)),
                at=at,
                comment=comment,
                policy_digest=policy.digest,
                key_fingerprint=fingerprint,
                signature_valid=True if signature else None,
            )
            problem = approval_eligibility(policy, ctx, replace(record, decision="approve"))
            if problem:
                raise PolicyNotMet(decision, v.ref, policy, [RuleResult("approvals", False, problem)])
            results: list[RuleResult] = []
            if decision == "approve":
                results = evaluate(policy, ctx, skip=("approvals", "channels", "signatures"))
                if not all(r.passed for r in results):
                    raise PolicyNotMet(decision, v.ref, policy, results)
            session.execute(
                _APPROVALS.insert().values(
                    version_id=v.row.id,
                    decision=decision,
                    actor=self.user,
                    roles=",".join(sorted(roles)),
                    comment=comment,
                    policy_digest=policy.digest,
                    key_fingerprint=fingerprint,
                    signature=signature,
                    signed_payload=payload,
                    at=at,
                )
            )
            after = replace(ctx, approvals=(*ctx.approvals, record))
            counted = len(counted_approvals(policy, after))
            state = v.state
            if decision == "reject":
                state = next_state(v.ref, v.state, "reject")
                self._transition(session, v, "reject", state, comment, policy.digest)
            elif counted >= policy.approval_count:
                state = next_state(v.ref, v.state, "approve")
                self._transition(session, v, "approve", state, comment, policy.digest)
            self.audit.append(
                session,
                self.user,
                decision,
                v.ref,
                {
                    "digest": v.row.digest,
                    "policy": policy.digest,
                    "comment": comment,
                    "key": fingerprint,
                    "signature": signature,
                    "approvals": counted,
                    "state": state,
                },
            )
        return ActionResult(
            decision,
            v.ref,
            v.row.digest,
            state,
            v.state,
            self.user,
            at,
            policy.name,
            policy.digest,
            approvals=counted,
            approvals_required=policy.approval_count,
            signed_with=fingerprint,
            results=tuple(results),
        )

    def release(
        self,
        ref: Ref,
        channel: str,
        key: Path | None,
        reason: str | None = None,
        prepare: Callable[[], Mapping[str, Any]] | None = None,
        discard: Callable[[], None] | None = None,
    ) -> ActionResult:
        """Point ``channel`` at the version, if its policy allows.

        ``prepare()`` (a merge) runs after the same checks have passed read-only and outside the
        write lock; its result is recorded with the release. If the checks refuse when the release
        is finally recorded, ``discard()`` removes what ``prepare`` made.
        """
        validate_channel(channel)
        details: Mapping[str, Any] | None = None
        if prepare is not None:
            with self.db.read() as session:
                self.identity.allowed(session, "release")
                checked = self._release_checks(session, ref, channel)
            if checked is None:  # already released there: nothing to prepare or record
                return self._unchanged(ref, channel)
            details = prepare()
        try:
            with self.db.write() as session:
                self.identity.require(session, "release")
                checked = self._release_checks(session, ref, channel)
                if checked is None:
                    if discard is not None:
                        discard()
                    return self._unchanged(ref, channel)
                v, to_state, current, active, results = checked
                return self._move(
                    session, v, "release", channel, current, to_state, active, key, reason, results, details
                )
        except BaseException:
            if discard is not None:
                discard()
            raise

    def _release_checks(self, session: Session, ref: Ref, channel: str) -> Any:
        """(version, state after, current target id, policy, results), or None if the channel already points there."""
        v = self._version(session, ref)
        to_state = next_state(v.ref, v.state, "release")
        current = records.channel_target(session, v.adapter_id, channel)
        if current == v.row.id:
            return None
        active = self.policies.active(session, channel)
        results = evaluate(active.policy, self.context(session, v, channel))
        if not all(r.passed for r in results):
            raise PolicyNotMet("release", v.ref, active.policy, results)
        return v, to_state, current, active, results

    def _unchanged(self, ref: Ref, channel: str) -> ActionResult:
        with self.db.read() as session:
            v = self._version(session, ref)
        return ActionResult(
            "release",
            v.ref,
            v.row.digest,
            v.state,
            v.state,
            self.user,
            now_iso(),
            channel=channel,
            previous=v.ref,
            changed=False,
        )

    def rollback(self, name: str, channel: str, to: int | None, key: Path | None, reason: str | None) -> ActionResult:
        """Move ``channel`` back to the version it pointed to before (or to version ``to``)."""
        validate_channel(channel)
        with self.db.write() as session:
            self.identity.require(session, "rollback")
            adapter_id = self.catalog.adapter_id(session, name)
            current = records.channel_target(session, adapter_id, channel)
            if current is None:
                raise NotFound(f"{name}@{channel} was never released, so there is nothing to roll back", name=name)
            moves = records.channel_moves(session, adapter_id, self.identity.keys_by_fingerprint, channel)
            current_number = session.execute(select(_VERSIONS.c.number).where(_VERSIONS.c.id == current)).scalar_one()
            target = self._rollback_target(session, name, channel, moves, current_number, to)
            v = self._version(session, Ref(name, version=target))
            to_state = next_state(v.ref, v.state, "rollback")
            active = self.policies.active(session, channel)
            return self._move(session, v, "rollback", channel, current, to_state, active, key, reason, [], None)

    def _rollback_target(
        self, session: Session, name: str, channel: str, moves: list[ChannelMove], current: int, to: int | None
    ) -> int:
        def revoked(number: int) -> bool:
            return self._version(session, Ref(name, version=number)).state == "revoked"

        released = sorted({m.version for m in moves if m.action == "release"})
        if to is not None:
            if to not in released:
                raise InvalidInput(
                    f"{name}:{to} was never released to {channel}; rollback can only return to a version released "
                    f"there before ({', '.join(map(str, released))})"
                )
            if to == current:
                raise InvalidInput(f"{name}@{channel} already points to {name}:{to}")
            if revoked(to):
                raise invalid_transition(f"{name}:{to}", "revoked", "rollback")
            return to
        # Walk back the releases like a stack: the version the current one replaced when it was
        # released, skipping revoked versions; repeated rollbacks keep walking back.
        version, seen = current, {current}
        while True:
            releases = [m for m in moves if m.action == "release" and m.version == version]
            previous = releases[-1].previous if releases else None
            if previous is None or previous in seen:
                raise NotFound(
                    f"{name}@{channel} has no earlier release to roll back to (it points to {name}:{current}); "
                    "use --to N for a version released there before",
                    name=name,
                )
            if not revoked(previous):
                return previous
            seen.add(previous)
            version = previous

    def _move(
        self,
        session: Session,
        v: _Version,
        action: str,
        channel: str,
        previous_id: int | None,
        to_state: str,
        active: ActivePolicy,
        key: Path | None,
        reason: str | None,
        results: list[RuleResult],
        details: Mapping[str, Any] | None,
    ) -> ActionResult:
        policy = active.policy
        at = now_iso()
        previous_number = (
            session.execute(select(_VERSIONS.c.number).where(_VERSIONS.c.id == previous_id)).scalar_one()
            if previous_id is not None
            else None
        )
        payload, signature, fingerprint = self._signature(
            session,
            policy,
            key,
            {
                "action": action,
                "ref": v.ref,
                "digest": v.row.digest,
                "channel": channel,
                "policy": policy.digest,
                "actor": self.user,
                "at": at,
            },
        )
        session.execute(
            _MOVES.insert().values(
                adapter_id=v.adapter_id,
                channel=channel,
                version_id=v.row.id,
                previous_version_id=previous_id,
                action=action,
                actor=self.user,
                at=at,
                reason=reason,
                policy_digest=policy.digest,
                key_fingerprint=fingerprint,
                signature=signature,
                signed_payload=payload,
                details=json.dumps(dict(details), sort_keys=True) if details else None,
            )
        )
        if to_state != v.state:
            self._transition(session, v, action, to_state, reason, policy.digest)
        self.audit.append(
            session,
            self.user,
            action,
            v.ref,
            {
                "digest": v.row.digest,
                "channel": channel,
                "previous": f"{v.name}:{previous_number}" if previous_number is not None else None,
                "policy": policy.digest,
                "reason": reason,
                "key": fingerprint,
                "signature": signature,
                "details": dict(details) if details else None,
            },
        )
        return ActionResult(
            action,
            v.ref,
            v.row.digest,
            to_state,
            v.state,
            self.user,
            at,
            policy.name,
            policy.digest,
            channel,
            previous=f"{v.name}:{previous_number}" if previous_number is not None else None,
            signed_with=fingerprint,
            results=tuple(results),
            details=details,
        )

    def deprecate(self, ref: Ref, reason: str | None) -> ActionResult:
        return self._change_state(ref, "deprecate", reason)

    def revoke(self, ref: Ref, reason: str) -> ActionResult:
        if not reason or not reason.strip():
            raise InvalidInput(
                "a revocation needs a reason (--reason TEXT): it is shown to everyone who tries to use it"
            )
        return self._change_state(ref, "revoke", reason, check=self._not_a_channel_target)

    def _not_a_channel_target(self, session: Session, v: _Version) -> None:
        pointing = records.current_channels(session, v.adapter_id, v.row.id)
        if pointing:
            raise InvalidInput(
                f"{v.ref} is what {', '.join(v.name + '@' + c for c in pointing)} points to, and a revoked version "
                f"may never be a channel's target; roll the channel back first (adapters rollback {v.name} "
                f"--channel {pointing[0]}), then revoke"
            )

    def _change_state(
        self, ref: Ref, action: str, reason: str | None, check: Callable[[Session, _Version], None] | None = None
    ) -> ActionResult:
        """A lifecycle action that records a transition and nothing else (review, deprecate, revoke)."""
        with self.db.write() as session:
            self.identity.require(session, action)
            v = self._version(session, ref)
            to_state = next_state(v.ref, v.state, action)
            if check is not None:
                check(session, v)
            at = self._transition(session, v, action, to_state, reason, None)
            key = "comment" if action == "review" else "reason"
            self.audit.append(session, self.user, action, v.ref, {"digest": v.row.digest, key: reason})
        return ActionResult(action, v.ref, v.row.digest, to_state, v.state, self.user, at)

    # -- reading ----------------------------------------------------------------------------------

    def channels(self, name: str) -> list[ChannelState]:
        with self.db.read() as session:
            adapter_id = self.catalog.adapter_id(session, name)
            moves = records.channel_moves(session, adapter_id, self.identity.keys_by_fingerprint)
            out = []
            for channel in sorted({m.channel for m in moves}):
                history = tuple(m for m in moves if m.channel == channel)
                last = history[-1]
                state = self._version(session, Ref(name, version=last.version)).state
                out.append(ChannelState(name, channel, last.version, last.digest, state, history))
            return out

    def check(self, ref: Ref, channel: str | None) -> PolicyCheck:
        with self.db.read() as session:
            v = self._version(session, ref)
            active = self.policies.active(session, channel)
            results = evaluate(active.policy, self.context(session, v, channel))
        return PolicyCheck(v.ref, channel, active.policy.name, active.policy.digest, tuple(results))
