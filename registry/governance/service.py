"""Lifecycle governance: review, approve, reject, deprecate, revoke, and ``policy check``.

Every action runs in one write transaction that checks the actor's role, the lifecycle table
and the policy in force, appends its record (transition, approval) and its audit event, or
changes nothing. Approvals and rejections are signed with the actor's Ed25519 key when the
policy requires it (or when a key is given), and the signature must verify against the actor's
registered public key. Channel moves (release, rollback) are in :mod:`.channels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from registry.audit.log import AuditLog
from registry.catalog.resolve import resolve, state_of
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.adapterdir import AdapterContents
from registry.domain.clock import Clock
from registry.domain.lifecycle import next_state
from registry.domain.policy import Policy
from registry.domain.records import ApprovalRecord, TransitionRecord
from registry.domain.refs import Ref
from registry.domain.rules import PolicyContext, RuleResult, counted_approvals, eligibility_problems, evaluate
from registry.domain.state import channels_pointing_to
from registry.domain.versions import Manifest
from registry.errors import InvalidInput, PolicyNotMet
from registry.governance.context import load_context
from registry.governance.results import ActionResult, PolicyCheck
from registry.identity import Identity
from registry.policies import Policies
from registry.storage.records import Records, RecordStore, StoredVersion

__all__ = ["Governance", "Version"]

T = TypeVar("T")


@dataclass(frozen=True)
class Version:
    """A version resolved inside a transaction, with its state then."""

    stored: StoredVersion
    state: str

    @property
    def ref(self) -> str:
        return self.stored.ref

    @property
    def digest(self) -> str:
        return self.stored.digest


class Governance:
    def __init__(
        self,
        store: RecordStore,
        identity: Identity,
        policies: Policies,
        audit: AuditLog,
        clock: Clock,
        adapter: Callable[[Manifest], AdapterContents] | None = None,
    ) -> None:
        """``adapter`` reads a version's config and tensor headers from the blob store (the ``serving`` rule)."""
        self.store = store
        self.adapter = adapter
        self.identity = identity
        self.policies = policies
        self.audit = audit
        self.clock = clock

    # -- helpers shared with the channel moves --------------------------------------------------

    def version(self, records: Records, actor: Actor, ref: Ref) -> Version:
        """The version ``ref`` points at, as ``actor`` sees it (one in a namespace they do not see is not found)."""
        stored = resolve(records, ref, self.identity.access(records, actor))
        return Version(stored, state_of(records, stored))

    def transition(
        self,
        records: Records,
        actor: Actor,
        v: Version,
        action: str,
        to_state: str,
        reason: str | None,
        policy_digest: str | None,
    ) -> str:
        at = self.clock()
        records.insert_transition(
            v.stored.id, TransitionRecord(action, v.state, to_state, actor.name, at, reason, policy_digest)
        )
        return at

    # -- lifecycle ------------------------------------------------------------------------------------

    def review(
        self, actor: Actor, ref: Ref, comment: str | None = None, signer: signing.Signer | None = None
    ) -> ActionResult:
        return self._change_state(actor, ref, "review", comment, signer)

    def decide(
        self, actor: Actor, ref: Ref, decision: str, comment: str | None, signer: signing.Signer | None
    ) -> ActionResult:
        """Approve or reject under the registry's policy in force.

        Every rule is evaluated before anything is signed or written, and a refusal names all the rules
        the decision fails at once (the signature, each approval rule, each policy rule), and is
        recorded as a ``approve refused`` / ``reject refused`` event.
        """
        if decision not in ("approve", "reject"):
            raise InvalidInput(f"a decision is approve or reject, not {decision!r}")

        def decide(records: Records) -> ActionResult:
            roles = self.identity.member(records, actor, ref.name)  # the roles that count in ref's namespace
            v = self.version(records, actor, ref)
            next_state(v.ref, v.state, decision)  # raises with the allowed actions
            policy = self.policies.active(records).policy
            ctx = load_context(records, v.stored, adapter=self.adapter)
            at = self.clock()
            registered = self.identity.key(records, actor.name)
            candidate = ApprovalRecord(
                actor=actor.name, decision=decision, roles=tuple(sorted(roles)), at=at, comment=comment,
                policy_digest=policy.digest, key_fingerprint=registered.fingerprint if registered else None,
                signature_valid=True,
            )  # fmt: skip
            results = _decision_rules(policy, ctx, candidate, decision, signed=signer is not None)
            if not all(r.passed for r in results):
                raise PolicyNotMet(decision, v.ref, policy, results)
            fields = {"action": decision, "ref": v.ref, "digest": v.digest, "policy": policy.digest,
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, policy, signer, fields)
            fingerprint = signed.key if signed else None
            record = replace(
                candidate,
                key_fingerprint=fingerprint,
                signature=signed.signature if signed else None,
                signed_payload=signed.payload if signed else None,
                signature_valid=True if signed else None,
            )
            records.insert_approval(v.stored.id, record)
            after = replace(ctx, approvals=(*ctx.approvals, record))
            counted = len(counted_approvals(policy, after))
            state = v.state
            if decision == "reject":
                state = next_state(v.ref, v.state, "reject")
                self.transition(records, actor, v, "reject", state, comment, policy.digest)
            elif counted >= policy.approval_count:
                state = next_state(v.ref, v.state, "approve")
                self.transition(records, actor, v, "approve", state, comment, policy.digest)
            self.audit.append(
                records,
                actor,
                decision,
                v.ref,
                {"digest": v.digest, "policy": policy.digest, "comment": comment, "approvals": counted,
                 "state": state},
                signed=signed,
            )  # fmt: skip
            return ActionResult(
                decision, v.ref, v.digest, state, v.state, actor.name, at, policy.name, policy.digest,
                approvals=counted, approvals_required=policy.approval_count, signed_with=fingerprint,
                results=tuple(r for r in results if r.rule != "signatures"),
            )  # fmt: skip

        return self.write_or_refuse(actor, decide, comment=comment)

    def write_or_refuse(self, actor: Actor, body: Callable[[Records], T], **context: Any) -> T:
        """Run ``body`` in a write transaction. When the policy refuses it (:class:`PolicyNotMet`) before
        anything was written, the refusal is recorded instead: an ``ACTION refused`` event naming the
        version, the policy and every rule that failed, so refused attempts (a self-approval, an
        early release) are part of the audited history. Then the refusal is raised."""
        refused: PolicyNotMet | None = None
        with self.store.write() as records:
            try:
                return body(records)
            except PolicyNotMet as exc:
                if records.pending_facts:
                    raise  # something was written: roll everything back, record nothing
                payload = {
                    "policy": exc.policy.digest,
                    "policy_name": exc.policy.name,
                    "rules": [{"rule": r.rule, "message": r.message} for r in exc.results if not r.passed],
                    **{k: v for k, v in context.items() if v is not None},
                }
                self.audit.append(records, actor, f"{exc.action} refused", exc.ref, payload)
                refused = exc
        raise refused

    def deprecate(
        self, actor: Actor, ref: Ref, reason: str | None, signer: signing.Signer | None = None
    ) -> ActionResult:
        return self._change_state(actor, ref, "deprecate", reason, signer)

    def revoke(self, actor: Actor, ref: Ref, reason: str, signer: signing.Signer | None = None) -> ActionResult:
        if not reason or not reason.strip():
            raise InvalidInput(
                "a revocation needs a reason (--reason TEXT): it is shown to everyone who tries to use it"
            )
        return self._change_state(actor, ref, "revoke", reason, signer, check=_not_a_channel_target)

    def _change_state(
        self,
        actor: Actor,
        ref: Ref,
        action: str,
        reason: str | None,
        signer: signing.Signer | None,
        check: Callable[[Records, Version], None] | None = None,
    ) -> ActionResult:
        """A lifecycle action that records a transition and nothing else (review, deprecate, revoke),
        signed by its actor when the policy in force requires signatures."""
        with self.store.write() as records:
            self.identity.require(records, actor, action, ref.name)
            v = self.version(records, actor, ref)
            to_state = next_state(v.ref, v.state, action)
            if check is not None:
                check(records, v)
            key = "comment" if action == "review" else "reason"
            at = self.clock()
            fields = {"action": action, "ref": v.ref, "digest": v.digest, key: reason, "actor": actor.name, "at": at}
            signed = self.identity.sign(records, actor, self.policies.active(records).policy, signer, fields)
            records.insert_transition(
                v.stored.id, TransitionRecord(action, v.state, to_state, actor.name, at, reason, None)
            )
            self.audit.append(records, actor, action, v.ref, {"digest": v.digest, key: reason}, signed=signed)
        return ActionResult(
            action, v.ref, v.digest, to_state, v.state, actor.name, at, signed_with=signed.key if signed else None
        )

    # -- policy check --------------------------------------------------------------------------------

    def check(self, actor: Actor, ref: Ref, channel: str | None) -> PolicyCheck:
        """Every rule of the policy in force (the channel's, for a release there) against a version."""
        with self.store.read() as records:
            v = self.version(records, actor, ref)
            active = self.policies.active(records, channel)
            results = evaluate(active.policy, load_context(records, v.stored, channel, self.adapter))
        return PolicyCheck(v.ref, channel, active.policy.name, active.policy.digest, tuple(results))


def _not_a_channel_target(records: Records, v: Version) -> None:
    pointing = channels_pointing_to(records.moves([v.stored.adapter_id]), v.stored.number)
    if pointing:
        name = v.stored.name
        raise InvalidInput(
            f"{v.ref} is what {', '.join(name + '@' + c for c in pointing)} points to, and a revoked version "
            f"may never be a channel's target; roll the channel back first (adapters rollback {name} "
            f"--channel {pointing[0]}), then revoke"
        )


def _decision_rules(
    policy: Policy, ctx: PolicyContext, candidate: ApprovalRecord, decision: str, signed: bool
) -> list[RuleResult]:
    """Every rule a decision is held to, passed or not: the signature the policy requires, each reason the
    decider may not approve (roles, author, independence, distinctness), and for an approval the policy's
    rules on the version itself."""
    results: list[RuleResult] = []
    if policy.signatures_required:
        results.append(
            RuleResult("signatures", True, "signed")
            if signed
            else RuleResult(
                "signatures",
                False,
                f"the policy requires {decision} to be signed with {candidate.actor}'s registered key: pass --key "
                "FILE or set ADAPTERS_KEY to your private key (adapters keys generate)",
            )
        )
    problems = eligibility_problems(policy, ctx, replace(candidate, decision="approve"))
    results += [RuleResult("approvals", False, p) for p in problems]
    if not problems:
        results.append(RuleResult("approvals", True, f"{candidate.actor} may {decision}"))
    if decision == "approve":
        results += evaluate(policy, ctx, skip=("approvals", "channels", "signatures"))
    return results
