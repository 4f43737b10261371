"""Users, roles and keys; who may do what.

The actor comes with every call (:class:`~registry.domain.actor.Actor`). The first user of a new
registry is its admin: the first time anyone changes anything in a registry that has no users,
that actor is registered with the admin role (an audited ``user bootstrap`` event). After that
only an admin grants roles, registers keys and sets policies.

Signatures are checked against a :class:`KeyRing`: every key ever registered, by user and
fingerprint, so an old signature stays verifiable after its signer's key was rotated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.audit.log import AuditLog
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.clock import Clock
from registry.domain.policy import Policy
from registry.domain.roles import ROLES, required_roles
from registry.domain.rules import RuleResult
from registry.domain.suggest import did_you_mean
from registry.errors import InvalidInput, NotFound, PermissionDenied, PolicyNotMet
from registry.identity.keyring import KeyRing
from registry.identity.results import GrantInfo, KeyInfo, UserDetail, UserInfo
from registry.policies import active_policy
from registry.storage.records import Records, RecordStore, RoleGrant, RoleRevocation, StoredKey, UserRemoval

__all__ = ["Identity"]


class Identity:
    def __init__(self, store: RecordStore, audit: AuditLog, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    def roles(records: Records, name: str) -> set[str]:
        """The roles ``name`` holds now: grants not revoked; none once the user was removed."""
        if records.removal(name) is not None:
            return set()
        revoked = {r.grant_id for r in records.revocations(name)}
        return {g.role for g in records.grants(name) if g.id not in revoked}

    @staticmethod
    def key(records: Records, name: str) -> StoredKey | None:
        """The user's latest registered key."""
        keys = records.keys(name)
        return keys[-1] if keys else None

    @staticmethod
    def keyring(records: Records) -> KeyRing:
        return KeyRing.of(records.keys())

    # -- who may do what ---------------------------------------------------------------------------

    def _bootstrap(self, records: Records, actor: Actor) -> None:
        """Register the actor as admin if the registry has no users yet."""
        if records.user_count():
            return
        at = self.clock()
        records.insert_user(actor.name, at, actor.name)
        records.insert_grant(RoleGrant(actor.name, "admin", at, actor.name))
        self.audit.append(
            records, actor, "user bootstrap", actor.name, {"roles": ["admin"], "note": "first user of the registry"}
        )

    def member(self, records: Records, actor: Actor) -> set[str]:
        """The actor's roles; refuses an actor who is not a user of this registry."""
        self._bootstrap(records, actor)
        return self._member_roles(records, actor)

    @staticmethod
    def _member_roles(records: Records, actor: Actor) -> set[str]:
        if records.user(actor.name) is None:
            raise PermissionDenied(
                f"{actor.name} is not a user of this registry (ADAPTERS_USER={actor.name}); an admin adds users with "
                f"`adapters users add {actor.name} --role ROLE`",
                actor.name,
            )
        removed = records.removal(actor.name)
        if removed is not None:
            raise PermissionDenied(
                f"{actor.name} was removed from this registry at {removed.removed_at} by {removed.removed_by} and can "
                "no longer act; their history stays (`adapters users show "
                f"{actor.name}`)",
                actor.name,
            )
        return Identity.roles(records, actor.name)

    def allowed(self, records: Records, actor: Actor, action: str) -> None:
        """Read-only form of :meth:`require`: in a registry without users the actor would become admin."""
        if records.user_count():
            _check(actor, self._member_roles(records, actor), action)

    def require(self, records: Records, actor: Actor, action: str) -> set[str]:
        """The actor's roles, after checking they include one that ``action`` needs."""
        roles = self.member(records, actor)
        _check(actor, roles, action)
        return roles

    # -- signing ---------------------------------------------------------------------------------------

    def sign(
        self,
        records: Records,
        actor: Actor,
        policy: Policy,
        signer: signing.Signer | None,
        fields: Mapping[str, Any],
    ) -> signing.SignedAction | None:
        """The actor's signature over an action (``fields``), or None when it is not signed.

        Signed when the policy in force requires signatures or a signer is given; the signature must
        verify against the actor's registered public key. ``fields`` always holds ``action`` and
        ``actor`` and ``at``, and the action's subject (``ref``, ``user`` or ``scope``).
        """
        if signer is None:
            if policy.signatures_required:
                message = (
                    f"the policy requires {fields['action']} to be signed with {actor.name}'s registered key: "
                    "pass --key FILE or set ADAPTERS_KEY to your private key (adapters keys generate)"
                )
                subject = str(fields.get("ref") or fields.get("subject") or "")
                raise PolicyNotMet(str(fields["action"]), subject, policy, [RuleResult("signatures", False, message)])
            return None
        registered = self.key(records, actor.name)
        if registered is None:
            public_file = signer.source.removesuffix(".key") + ".pub"
            raise PermissionDenied(
                f"{actor.name} has no registered public key, so a signature by {signer.source} proves nothing; an "
                f"admin registers it with `adapters users add {actor.name} --public-key {public_file}`",
                actor.name,
            )
        payload, signature = signing.sign_fields(signer, fields)
        if not signing.verify(registered.public_key, payload, signature):
            raise PermissionDenied(
                f"the key {signer.source} is not {actor.name}'s registered key ({registered.fingerprint}); "
                "sign with your own key",
                actor.name,
            )
        return signing.SignedAction(payload.decode("utf-8"), signature, registered.fingerprint)

    # -- changing users ---------------------------------------------------------------------------

    def add(
        self,
        actor: Actor,
        name: str,
        roles: Sequence[str],
        public_key: bytes | None,
        signer: signing.Signer | None = None,
    ) -> UserInfo:
        """Register ``name`` (if new), grant ``roles`` and register ``public_key``. Admins only.

        Signed by the admin (``signer``) when the policy in force requires signatures: the signed
        action names the user, the roles granted and the key registered, so nobody without an
        admin's private key can add a user, a role or a key that ``audit verify`` accepts.
        """
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise InvalidInput(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        Actor(name)  # the same rule for a user's name as for an actor's
        fingerprint = signing.fingerprint(public_key, "the --public-key file") if public_key is not None else None
        with self.store.write() as records:
            self.require(records, actor, "users add")
            _refuse_removed(records, name)
            at = self.clock()
            exists = records.user(name) is not None
            new_roles = [r for r in dict.fromkeys(roles) if r not in self.roles(records, name)]
            current = self.key(records, name)
            new_key = fingerprint is not None and (current is None or current.fingerprint != fingerprint)
            if exists and not new_roles and not new_key:
                return self._info(records, name)
            action = "user update" if exists else "user add"
            fields = {
                "action": action, "subject": name, "roles_granted": new_roles, "key": fingerprint if new_key else None,
                "public_key": public_key.decode("ascii") if new_key and public_key else None,
                "actor": actor.name, "at": at,
            }  # fmt: skip
            signed = self.sign(records, actor, active_policy(records).policy, signer, fields)
            if not exists:
                records.insert_user(name, at, actor.name)
            for role in new_roles:
                records.insert_grant(RoleGrant(name, role, at, actor.name))
            if new_key and public_key is not None and fingerprint is not None:
                _refuse_shared_key(records, fingerprint, name)
                records.insert_key(name, public_key, fingerprint, at, actor.name)
            payload = {"roles_granted": new_roles, "key_fingerprint": fingerprint if new_key else None}
            if new_key and public_key is not None:
                payload["public_key"] = public_key.decode("ascii")
            self.audit.append(records, actor, action, name, payload, signed=signed)
            return self._info(records, name)

    def revoke_role(
        self, actor: Actor, name: str, role: str, reason: str | None = None, signer: signing.Signer | None = None
    ) -> UserInfo:
        """Withdraw ``role`` from ``name`` (admins only, signed like ``users add``). The grant stays in the
        history; what ``name`` did with the role stays valid. The last admin's admin role is not revoked."""
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        with self.store.write() as records:
            self.require(records, actor, "users revoke-role")
            info = self._info(records, name)
            _refuse_removed(records, name)
            if role not in info.roles:
                held = ", ".join(info.roles) or "no role"
                raise NotFound(f"{name} does not hold the role {role!r} (they hold {held}); nothing to revoke")
            if role == "admin":
                _refuse_last_admin(records, name, "revoke their admin role")
            at = self.clock()
            fields = {"action": "role revoke", "subject": name, "roles_revoked": [role], "reason": reason,
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.sign(records, actor, active_policy(records).policy, signer, fields)
            revoked = {r.grant_id for r in records.revocations(name)}
            for grant in records.grants(name):
                if grant.role == role and grant.id is not None and grant.id not in revoked:
                    records.insert_revocation(RoleRevocation(grant.id, name, role, at, actor.name, reason))
            self.audit.append(records, actor, "role revoke", name, {"roles_revoked": [role], "reason": reason},
                              signed=signed)  # fmt: skip
            return self._info(records, name)

    def remove(
        self, actor: Actor, name: str, reason: str | None = None, signer: signing.Signer | None = None
    ) -> UserInfo:
        """Remove ``name`` (admins only, signed like ``users add``): they can no longer act; their account,
        grants, keys and everything they did stay, and their old signatures still verify. A removed
        user's name is not given to anyone else. The last admin is not removed."""
        with self.store.write() as records:
            self.require(records, actor, "users remove")
            self._info(records, name)
            _refuse_removed(records, name)
            if "admin" in self.roles(records, name):
                _refuse_last_admin(records, name, "remove them")
            at = self.clock()
            fields = {"action": "user remove", "subject": name, "reason": reason, "actor": actor.name, "at": at}
            signed = self.sign(records, actor, active_policy(records).policy, signer, fields)
            records.insert_removal(UserRemoval(name, at, actor.name, reason))
            self.audit.append(records, actor, "user remove", name, {"reason": reason}, signed=signed)
            return self._info(records, name)

    def get(self, name: str) -> UserInfo:
        with self.store.read() as records:
            return self._info(records, name)

    def detail(self, name: str) -> UserDetail:
        """One user with the history of their role grants and keys."""
        with self.store.read() as records:
            info = self._info(records, name)
            revocations = {r.grant_id: r for r in records.revocations(name)}
            grants = []
            for g in records.grants(name):
                r = revocations.get(g.id) if g.id is not None else None
                if r is None:
                    grants.append(GrantInfo(g.role, g.granted_at, g.granted_by))
                else:
                    grants.append(GrantInfo(g.role, g.granted_at, g.granted_by, r.revoked_at, r.revoked_by, r.reason))
            keys = records.keys(name)
            removal = records.removal(name)
            return UserDetail(
                info,
                tuple(grants),
                tuple(KeyInfo(k.fingerprint, k.added_at, k.added_by, k is keys[-1] and removal is None) for k in keys),
                removal.reason if removal else None,
            )

    def list(self, include_removed: bool = False) -> list[UserInfo]:
        with self.store.read() as records:
            removed = {r.user for r in records.removals()}
            return [self._info(records, u.name) for u in records.users() if include_removed or u.name not in removed]

    def _info(self, records: Records, name: str) -> UserInfo:
        user = records.user(name)
        if user is None:
            hint = did_you_mean(name, [u.name for u in records.users()])
            raise NotFound(f"no user {name!r}{hint}; add one with `adapters users add {name} --role ROLE`")
        key = self.key(records, name)
        removal = records.removal(name)
        return UserInfo(
            name=name,
            roles=tuple(sorted(self.roles(records, name))),
            key_fingerprint=key.fingerprint if key and removal is None else None,
            created_at=user.created_at,
            created_by=user.created_by,
            removed_at=removal.removed_at if removal else None,
            removed_by=removal.removed_by if removal else None,
        )


def _check(actor: Actor, roles: set[str], action: str) -> None:
    needed = required_roles(action)
    if not roles & needed:
        have = ", ".join(sorted(roles)) or "no role"
        raise PermissionDenied(
            f"{actor.name} may not {action}: it needs one of the roles {', '.join(sorted(needed))}, and "
            f"{actor.name} has {have}; an admin grants roles with `adapters users add {actor.name} --role ROLE`",
            actor.name,
        )


def _refuse_removed(records: Records, name: str) -> None:
    removal = records.removal(name)
    if removal is not None:
        raise InvalidInput(
            f"{name} was removed at {removal.removed_at} by {removal.removed_by}; a removed user's name is not "
            "reused, so their history stays theirs: add the person under a new name"
        )


def _refuse_last_admin(records: Records, name: str, what: str) -> None:
    admins = [u.name for u in records.users() if "admin" in Identity.roles(records, u.name)]
    if admins == [name]:
        raise InvalidInput(
            f"{name} is the registry's only admin; grant another user the admin role first "
            f"(`adapters users add OTHER --role admin`), then {what}"
        )


def _refuse_shared_key(records: Records, fingerprint: str, name: str) -> None:
    others = [u for u in records.key_owners(fingerprint) if u != name]
    if others:
        raise InvalidInput(
            f"that public key is already registered to {others[0]}; every person needs a key of "
            "their own (separation of duties compares keys)"
        )
