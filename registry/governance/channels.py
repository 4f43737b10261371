"""Channel moves: release a version to a channel, roll a channel back, list channels.

A channel is a movable pointer whose every move is an appended record; its target is the
latest move (:func:`registry.domain.state.channel_targets`). A release is held to the channel's
own policy (else the registry's); a rollback needs the role and, under a policy that requires
them, a signature, but never re-evaluates the whole policy: an incident rollback is not blocked
by a threshold that changed since.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry.catalog.resolve import adapter_id
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.lifecycle import invalid_transition, next_state
from registry.domain.records import ChannelMove
from registry.domain.refs import Ref, validate_channel
from registry.domain.rules import RuleResult, evaluate
from registry.domain.state import channel_targets, version_state
from registry.domain.suggest import did_you_mean
from registry.errors import InvalidInput, NotFound, PolicyNotMet
from registry.governance.context import load_context
from registry.governance.results import ActionResult, ChannelState
from registry.governance.service import Governance, Version
from registry.policies import ActivePolicy
from registry.storage.records import Records

__all__ = ["Channels"]


@dataclass(frozen=True)
class _Checked:
    """A release that passed its checks: the version, its state after, the channel's current target."""

    version: Version
    to_state: str
    current: int | None  # version id the channel points to now
    policy: ActivePolicy
    results: tuple[RuleResult, ...]


class Channels:
    def __init__(self, governance: Governance) -> None:
        self.g = governance
        self.store = governance.store

    def release(
        self,
        actor: Actor,
        ref: Ref,
        channel: str,
        signer: signing.Signer | None,
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
        signed = signer is not None
        if prepare is not None:
            if not self.would_release(actor, ref, channel, signed):  # already released there
                return self._unchanged(actor, ref, channel)
            details = prepare()

        def release(records: Records) -> ActionResult:
            self.g.identity.require(records, actor, "release", ref.name)
            checked = self._checks(records, actor, ref, channel, signed)
            if checked is None:
                if discard is not None:
                    discard()
                return self._unchanged(actor, ref, channel)
            return self._move(records, actor, "release", channel, checked, signer, reason, details)

        try:
            return self.g.write_or_refuse(actor, release, channel=channel, reason=reason)
        except BaseException:
            if discard is not None:
                discard()
            raise

    def would_release(self, actor: Actor, ref: Ref, channel: str, signed: bool) -> bool:
        """The release's checks, read-only (before a merge, so that a refused release costs no merge):
        True when the release would move the channel, False when it already points to the version.
        A refusal is recorded and raised as the release itself would."""
        validate_channel(channel)
        try:
            with self.store.read() as records:
                self.g.identity.allowed(records, actor, "release", ref.name)
                return self._checks(records, actor, ref, channel, signed) is not None
        except PolicyNotMet:
            # refused before the merge: check again where the refusal can be recorded
            self.g.write_or_refuse(actor, lambda records: self._refused_release(records, actor, ref, channel, signed),
                                   channel=channel)  # fmt: skip
            raise

    def _refused_release(self, records: Records, actor: Actor, ref: Ref, channel: str, signed: bool) -> None:
        self.g.identity.require(records, actor, "release", ref.name)
        self._checks(records, actor, ref, channel, signed)

    def _checks(self, records: Records, actor: Actor, ref: Ref, channel: str, signed: bool) -> _Checked | None:
        """The release's checks, or None when the channel already points to the version. Every rule of the
        channel's policy is evaluated, and the release's own signature when the policy requires one."""
        v = self.g.version(records, actor, ref)
        to_state = next_state(v.ref, v.state, "release")
        current = channel_targets(records.moves([v.stored.adapter_id])).get(channel)
        if current is not None and current.version == v.stored.number:
            return None
        active = self.g.policies.active(records, channel)
        results = evaluate(active.policy, load_context(records, v.stored, channel, self.g.adapter))
        if active.policy.signatures_required and not signed:
            results.append(
                RuleResult(
                    "signatures",
                    False,
                    f"the policy requires release to be signed with {actor.name}'s registered key: pass "
                    "--key FILE or set ADAPTERS_KEY to your private key (adapters keys generate)",
                )
            )
        if not all(r.passed for r in results):
            raise PolicyNotMet("release", v.ref, active.policy, results)
        current_id = _version_id(records, v.stored.adapter_id, current.version) if current else None
        return _Checked(v, to_state, current_id, active, tuple(results))

    def _unchanged(self, actor: Actor, ref: Ref, channel: str) -> ActionResult:
        with self.store.read() as records:
            v = self.g.version(records, actor, ref)
        return ActionResult(
            "release", v.ref, v.digest, v.state, v.state, actor.name, self.g.clock(), channel=channel,
            previous=v.ref, changed=False,
        )  # fmt: skip

    def rollback(
        self, actor: Actor, name: str, channel: str, to: int | None, signer: signing.Signer | None, reason: str | None
    ) -> ActionResult:
        """Move ``channel`` back to the version it pointed to before (or to version ``to``)."""
        validate_channel(channel)

        def rollback(records: Records) -> ActionResult:
            self.g.identity.require(records, actor, "rollback", name)
            aid = adapter_id(records, name, self.g.identity.access(records, actor))
            moves = records.moves([aid], channel)
            if not moves:
                channels = channel_targets(records.moves([aid]))
                hint = did_you_mean(channel, channels, f"{name}@{{}}") if channels else ""
                raise NotFound(
                    f"{name}@{channel} was never released, so there is nothing to roll back{hint}", name=name
                )
            current = moves[-1].version
            target = _rollback_target(records, aid, name, channel, moves, current, to)
            v = self.g.version(records, actor, Ref(name, version=target))
            to_state = next_state(v.ref, v.state, "rollback")
            checked = _Checked(
                v, to_state, _version_id(records, aid, current), self.g.policies.active(records, channel), ()
            )
            return self._move(records, actor, "rollback", channel, checked, signer, reason, None)

        return self.g.write_or_refuse(actor, rollback, channel=channel, reason=reason)

    def _move(
        self,
        records: Records,
        actor: Actor,
        action: str,
        channel: str,
        checked: _Checked,
        signer: signing.Signer | None,
        reason: str | None,
        details: Mapping[str, Any] | None,
    ) -> ActionResult:
        v, policy = checked.version, checked.policy.policy
        at = self.g.clock()
        previous_number = records.versions_by_id([checked.current])[checked.current].number if checked.current else None
        fields = {"action": action, "ref": v.ref, "digest": v.digest, "channel": channel, "policy": policy.digest,
                  "actor": actor.name, "at": at}  # fmt: skip
        signed = self.g.identity.sign(records, actor, policy, signer, fields)
        fingerprint = signed.key if signed else None
        move = ChannelMove(
            id=0, name=v.stored.name, channel=channel, action=action, version=v.stored.number,
            previous=previous_number, actor=actor.name, at=at, digest=v.digest, reason=reason,
            policy_digest=policy.digest, key_fingerprint=fingerprint, signature=signed.signature if signed else None,
            signed_payload=signed.payload if signed else None, details=dict(details) if details else None,
        )  # fmt: skip
        records.insert_move(v.stored.adapter_id, v.stored.id, checked.current, move)
        if checked.to_state != v.state:
            self.g.transition(records, actor, v, action, checked.to_state, reason, policy.digest)
        previous = f"{v.stored.name}:{previous_number}" if previous_number is not None else None
        self.g.audit.append(
            records,
            actor,
            action,
            v.ref,
            {"digest": v.digest, "channel": channel, "previous": previous, "policy": policy.digest, "reason": reason,
             "details": dict(details) if details else None},
            signed=signed,
        )  # fmt: skip
        return ActionResult(
            action, v.ref, v.digest, checked.to_state, v.state, actor.name, at, policy.name, policy.digest, channel,
            previous=previous, signed_with=fingerprint, results=checked.results, details=details,
        )  # fmt: skip

    def channels(self, actor: Actor, name: str) -> list[ChannelState]:
        """Each channel of an adapter: its current version and its full history."""
        with self.store.read() as records:
            aid = adapter_id(records, name, self.g.identity.access(records, actor))
            moves = self.g.identity.keyring(records).moves(records.moves([aid]))
            targets = channel_targets(moves)
            versions = {v.number: v for v in records.versions_of([name])}
            latest = records.latest_transitions([v.id for v in versions.values()])
            out = []
            for channel, last in targets.items():
                state = version_state([latest.get(versions[last.version].id)])
                history = tuple(m for m in moves if m.channel == channel)
                out.append(ChannelState(name, channel, last.version, last.digest, state, history))
            return out


def _version_id(records: Records, adapter_id: int, number: int) -> int:
    found = records.version(adapter_id, number)
    if found is None:  # moves reference versions by foreign key
        raise NotFound(f"version {number} of adapter #{adapter_id} is not recorded")
    return found.id


def _rollback_target(
    records: Records, aid: int, name: str, channel: str, moves: Sequence[ChannelMove], current: int, to: int | None
) -> int:
    def revoked(number: int) -> bool:
        stored = records.version(aid, number)
        return (
            stored is not None and version_state([records.latest_transitions([stored.id]).get(stored.id)]) == "revoked"
        )

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
