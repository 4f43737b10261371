"""Replaying governance along the chain: who held which role and key at each event, and whether each
event that had to be signed was signed by the key then in force.

From the registry's initialisation (``registry init``, which names the admin and their key) on, a
governing event recorded while the policy in force requires signatures must carry its actor's
signature (``signed``: the canonical JSON of the action, the signature, the key's fingerprint). The
key must be the one the actor had at that point of the chain, as established by earlier signed
events (``user add`` / ``user update`` signed by an admin) back to the initialisation; the signed
action must be this event's (same action, actor, subject, and a time within ``CLOCK_SKEW_S``); and
no signature may appear twice. So an event appended without a real admin's or actor's private key
is detected, however well its hashes were recomputed. Roles are replayed with their scopes: a grant
for one namespace (``user add`` naming a ``namespace``) authorises actions on that namespace's
adapters only, exactly as the registry checked them (:class:`~registry.domain.roles.Access`). Before the initialisation (or while no policy
requires signatures) events are not required to be signed; signatures they do carry are checked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.domain import signing
from registry.domain.audit import Event, Finding
from registry.domain.clock import parse_iso
from registry.domain.roles import PERMISSIONS, Access, ScopedRole, adapter_of

__all__ = ["CLOCK_SKEW_S", "GOVERNING", "INIT_ACTION", "AuthorityCheck", "check_authority"]

INIT_ACTION = "registry init"
CHECKPOINT_ACTION = "audit checkpoint"
#: How far a signed action's time may be from its event's (clients' clocks, a slow network).
CLOCK_SKEW_S = 600
#: Actions that must be signed under a policy that requires signatures, and the role each needs
#: (``None``: any registered user; the policy's own approval rules were checked when they were recorded).
GOVERNING: dict[str, str | None] = {
    "user add": "users add",
    "user update": "users add",
    "user remove": "users remove",
    "role revoke": "users revoke-role",
    "policy set": "policy set",
    "review": "review",
    "approve": None,
    "reject": None,
    "release": "release",
    "rollback": "rollback",
    "deprecate": "deprecate",
    "revoke": "revoke",
    "eval add": "eval add",
    "verify": None,
    "tag": "tag",
    "untag": "tag",
    "note": "note",
    "gc": "gc",
    "token create": "tokens create",
    "token revoke": "tokens revoke",
    CHECKPOINT_ACTION: "audit checkpoint",
}


def _payload(e: Event) -> dict[str, Any]:
    return e.data


def _verify_all(jobs: Sequence[tuple[bytes, str, str]]) -> list[bool]:
    """Ed25519 checks of (public PEM, payload, signature), on a few threads: the library releases the GIL,
    and a registry's signatures are most of what verification costs."""

    def one(job: tuple[bytes, str, str]) -> bool:
        return signing.verify(job[0], job[1].encode("utf-8"), job[2])

    workers = min(8, os.cpu_count() or 1)
    if len(jobs) < 64 or workers < 2:
        return [one(j) for j in jobs]
    from concurrent.futures import ThreadPoolExecutor

    size = -(-len(jobs) // workers)
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [ok for part in pool.map(lambda chunk: [one(j) for j in chunk], chunks) for ok in part]


@dataclass
class AuthorityCheck:
    findings: list[Finding] = field(default_factory=list)
    initialised_at: int | None = None
    unsigned_before: int = 0  # events recorded before signed governance began
    signatures: int = 0  # signatures checked

    def add(self, kind: str, seq: int, message: str) -> None:
        self.findings.append(Finding(kind, seq, message))


@dataclass
class _State:
    """Who held what at the current point of the chain."""

    roles: dict[str, set[ScopedRole]] = field(default_factory=dict)
    scoped: set[str] = field(default_factory=set)  # users ever granted a role for one namespace
    keys: dict[str, dict[str, bytes]] = field(default_factory=dict)  # user -> fingerprint -> public PEM
    active: dict[str, str] = field(default_factory=dict)  # user -> fingerprint of the key in force
    signatures_required: dict[str, bool] = field(default_factory=dict)  # scope ("*" or channel) -> required
    registry_key: str | None = None
    registry_public: bytes | None = None
    seen: dict[str, int] = field(default_factory=dict)  # signature -> seq of its first event


class _Replay:
    def __init__(
        self,
        rows: Mapping[str, Sequence[Mapping[str, Any]]],
        policies: Mapping[str, bool],
        registry_public: bytes | None,
    ) -> None:
        self.pem = {
            (str(k["user_name"]), str(k["fingerprint"])): str(k["public_key"]).encode()
            for k in rows.get("user_keys", ())
        }
        self.signed_rows = {
            str(r["signature"]): r
            for t in ("approvals", "channel_moves")
            for r in rows.get(t, ())
            if r.get("signature")
        }
        self.policy_signatures = policies  # policy digest -> requires signatures
        self.valid: dict[tuple[str, str, str], bool] = {}  # (fingerprint, payload, signature) -> verifies
        self.state = _State()
        if registry_public is not None:
            self.state.registry_public = registry_public
            self.state.registry_key = signing.fingerprint(registry_public)
        self.out = AuthorityCheck()

    # -- state changes ------------------------------------------------------------------------------

    def _register_key(self, user: str, fingerprint: str | None, pem: str | None) -> None:
        if not fingerprint:
            return
        public = pem.encode() if pem else self.pem.get((user, fingerprint))
        if public is not None:
            self.state.keys.setdefault(user, {})[fingerprint] = public
        self.state.active[user] = fingerprint

    def apply(self, e: Event, p: Mapping[str, Any]) -> None:
        s = self.state
        if e.action == INIT_ACTION:
            s.roles.setdefault(str(p.get("admin")), set()).add(ScopedRole("admin"))
            self._register_key(str(p.get("admin")), p.get("admin_key"), p.get("admin_public_key"))
            pem = p.get("registry_public_key")
            if isinstance(pem, str) and s.registry_public is None:  # the key the verifier trusts wins
                s.registry_key, s.registry_public = p.get("registry_key"), pem.encode()
            self.out.initialised_at = e.seq
        elif e.action == "user bootstrap":
            s.roles.setdefault(e.actor, set()).update(ScopedRole(str(r)) for r in p.get("roles") or ["admin"])
        elif e.action in ("user add", "user update"):
            namespace = _namespace(p)
            s.roles.setdefault(e.subject, set()).update(
                ScopedRole(str(r), namespace) for r in p.get("roles_granted") or []
            )
            if namespace is not None and p.get("roles_granted"):
                s.scoped.add(e.subject)
            self._register_key(e.subject, p.get("key_fingerprint"), p.get("public_key"))
        elif e.action == "role revoke":
            namespace = _namespace(p)
            revoked = {ScopedRole(str(r), namespace) for r in p.get("roles_revoked") or []}
            s.roles.get(e.subject, set()).difference_update(revoked)
        elif e.action == "user remove":
            s.roles.pop(e.subject, None)
            s.active.pop(e.subject, None)
        elif e.action == "policy set":
            scope = "*" if e.subject == "registry" else e.subject.removeprefix("channel ")
            required = p.get("signatures")
            if required is None:
                required = self.policy_signatures.get(str(p.get("digest")), False)
            s.signatures_required[scope] = bool(required)

    # -- checks -------------------------------------------------------------------------------------

    def required(self, e: Event, p: Mapping[str, Any]) -> bool:
        if self.out.initialised_at is None or e.action not in GOVERNING or e.seq == self.out.initialised_at:
            return False
        if e.action in ("release", "rollback") and p.get("channel") in self.state.signatures_required:
            return self.state.signatures_required[str(p["channel"])]
        return self.state.signatures_required.get("*", False)

    def authorised(self, e: Event) -> bool:
        needed = GOVERNING.get(e.action, "push" if e.action == "push" else None)
        if self.out.initialised_at is None or e.action not in (*GOVERNING, "push"):
            return True
        grants = self.state.roles.get(e.actor)
        if grants is None:
            self.out.add("unauthorised", e.seq, f"{e.label}: {e.actor} was not a user of the registry then")
            return False
        access = Access.of(grants, e.actor in self.state.scoped)
        held = ", ".join(sorted(g.label for g in grants)) or "no role"
        adapter = adapter_of(e.action, e.subject)
        if adapter is not None and not access.sees(adapter):
            self.out.add(
                "unauthorised",
                e.seq,
                f"{e.label}: {e.actor} held {held} then, none of it for {adapter}: the action was not theirs to take",
            )
            return False
        allowed = (PERMISSIONS.get(needed, frozenset()) | {"admin"}) if needed else None
        if allowed is not None and needed is not None and not access.roles_for(needed, adapter) & allowed:
            where = f" for {adapter}" if adapter is not None and any(g.namespace for g in grants) else ""
            self.out.add(
                "unauthorised",
                e.seq,
                f"{e.label}: {e.actor} held {held} then, and the action needs one of {', '.join(sorted(allowed))}{where}",
            )
            return False
        return True

    def signed_block(self, e: Event, p: Mapping[str, Any]) -> signing.SignedAction | None:
        block = p.get("signed")
        if isinstance(block, Mapping):
            try:
                return signing.SignedAction.from_dict(block)
            except KeyError:
                return None
        legacy = p.get("signature")  # approvals and channel moves of an earlier release: the row holds the payload
        row = self.signed_rows.get(str(legacy)) if legacy else None
        if row is not None and row.get("signed_payload") and p.get("key"):
            return signing.SignedAction(str(row["signed_payload"]), str(legacy), str(p["key"]))
        return None

    def check_signature(self, e: Event, signed: signing.SignedAction) -> bool:
        """Whether the signature is good (each problem is a finding)."""
        self.out.signatures += 1
        s = self.state
        public: bytes | None
        if e.action == CHECKPOINT_ACTION:
            if s.registry_public is None:
                return True  # the registry key is not known here: the checkpoint files' check says so
            public, in_force = s.registry_public, s.registry_key
        else:
            public, in_force = s.keys.get(e.actor, {}).get(signed.key), s.active.get(e.actor)
        if signed.key != in_force or public is None:
            self.out.add(
                "signature-key",
                e.seq,
                f"{e.label} is signed with key {signed.key[:19]}…, which is not {e.actor}'s key in force at that "
                f"point of the chain ({(in_force or 'none')[:19]}…): the event was not signed by its actor",
            )
            return False
        cached = self.valid.get((signed.key, signed.payload, signed.signature))
        ok = cached if cached is not None else signing.verify(public, signed.payload.encode("utf-8"), signed.signature)
        if not ok:
            self.out.add("signature-invalid", e.seq, f"{e.label} carries a signature that does not verify")
            return False
        good = self._check_fields(e, signed)
        first = s.seen.setdefault(signed.signature, e.seq)
        if first != e.seq:
            self.out.add("signature-replayed", e.seq, f"{e.label} reuses the signature of event {first}: a replay")
            return False
        return good

    def _check_fields(self, e: Event, signed: signing.SignedAction) -> bool:
        fields = signed.fields
        problems = []
        if e.action == CHECKPOINT_ACTION:  # the signed payload is the checkpoint itself
            recorded = _payload(e)
            problems += [f"{k} {fields.get(k)!r}" for k in ("size", "head") if fields.get(k) != recorded.get(k)]
        else:
            subject = fields.get("ref", fields.get("subject"))
            if fields.get("action") != e.action:
                problems.append(f"action {fields.get('action')!r}")
            if fields.get("actor") != e.actor:
                problems.append(f"actor {fields.get('actor')!r}")
            if subject is not None and subject != e.subject:
                problems.append(f"subject {subject!r}")
        try:
            skew = abs((parse_iso(str(fields.get("at"))) - parse_iso(e.at)).total_seconds())
        except ValueError:
            skew = float("inf")
        if skew > CLOCK_SKEW_S:
            problems.append(f"time {fields.get('at')!r}")
        if problems:
            self.out.add(
                "signature-mismatch",
                e.seq,
                f"{e.label} carries a signature over another action ({', '.join(problems)}): it signed something else",
            )
        return not problems


def _namespace(p: Mapping[str, Any]) -> str | None:
    """The namespace a grant or revocation event names (None: the whole registry, as every event before scopes)."""
    namespace = p.get("namespace")
    return str(namespace) if namespace is not None else None


def check_authority(
    events: Sequence[Event],
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    policy_signatures: Mapping[str, bool],
    registry_public: bytes | None = None,
) -> AuthorityCheck:
    """Replay the chain (see the module documentation). ``policy_signatures``: policy digest -> whether
    that policy requires signatures (for ``policy set`` events of an earlier release, which did not say);
    ``registry_public``: the registry key the verifier trusts (checkpoint events are signed with it)."""
    replay = _Replay(rows, policy_signatures, registry_public)
    _prevalidate(replay, events)
    for e in events:
        p = _payload(e)
        signed = replay.signed_block(e, p)
        good = True
        if signed is not None:
            good = replay.check_signature(e, signed)
        elif replay.required(e, p):
            good = False
            replay.out.add(
                "signature-missing",
                e.seq,
                f"{e.label} is not signed, though the policy in force requires signatures: it was recorded "
                "without its actor's private key",
            )
        if e.action != "verify":  # anyone may verify (a signed report names a registered key anyway)
            good = replay.authorised(e) and good
        if good:  # a forged grant, key or policy change establishes nothing for the events after it
            replay.apply(e, p)
    out = replay.out
    out.unsigned_before = (out.initialised_at - 1) if out.initialised_at is not None else len(events)
    return out


def _prevalidate(replay: _Replay, events: Sequence[Event]) -> None:
    """Check every signature against the key its block names, in parallel, before the replay decides
    (in order) whether that key was the one in force."""
    pems = dict((fp, pem) for (_, fp), pem in replay.pem.items())
    for e in events:
        p = _payload(e)
        for fp_key, pem_key in (("key_fingerprint", "public_key"), ("admin_key", "admin_public_key")):
            if isinstance(p.get(fp_key), str) and isinstance(p.get(pem_key), str):
                pems[p[fp_key]] = p[pem_key].encode()
    if replay.state.registry_public is not None and replay.state.registry_key is not None:
        pems[replay.state.registry_key] = replay.state.registry_public
    jobs, keys = [], []
    for e in events:
        signed = replay.signed_block(e, _payload(e))
        if signed is not None and signed.key in pems:
            jobs.append((pems[signed.key], signed.payload, signed.signature))
            keys.append((signed.key, signed.payload, signed.signature))
    replay.valid = dict(zip(keys, _verify_all(jobs), strict=True))
