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
from registry.domain.roles import (
    REGISTRY_WIDE,
    ROLES,
    Access,
    ScopedRole,
    namespace_of,
    required_roles,
    sorted_roles,
    validate_namespace,
)
from registry.domain.rules import RuleResult
from registry.domain.suggest import did_you_mean, no_such_adapter
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
    def grants_in_force(records: Records, name: str) -> list[RoleGrant]:
        """The grants ``name`` holds now: not revoked; none once the user was removed."""
        if records.removal(name) is not None:
            return []
        revoked = {r.grant_id for r in records.revocations(name)}
        return [g for g in records.grants(name) if g.id not in revoked]

    @staticmethod
    def roles(records: Records, name: str) -> set[str]:
        """The roles ``name`` holds now, whatever their scope (admin is never scoped)."""
        return {g.role for g in Identity.grants_in_force(records, name)}

    @staticmethod
    def scoped_roles(records: Records, name: str) -> set[ScopedRole]:
        """The roles ``name`` holds now, each with its namespace (None: the whole registry)."""
        return {ScopedRole(g.role, g.namespace) for g in Identity.grants_in_force(records, name)}

    @staticmethod
    def access(records: Records, actor: Actor) -> Access:
        """What ``actor`` sees and with which roles (:class:`~registry.domain.roles.Access`): everything in a
        registry without users (permission checks are off) and for an actor who is not one of its users
        (reads were never checked; every change by them is refused anyway)."""
        if not records.user_count() or records.user(actor.name) is None:
            return Access.unrestricted()
        ever_scoped = any(g.namespace is not None for g in records.grants(actor.name))
        return Access.of(Identity.scoped_roles(records, actor.name), ever_scoped)

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

    def member(self, records: Records, actor: Actor, name: str | None = None) -> set[str]:
        """The actor's roles that count on the adapter ``name`` (None: global ones); refuses an actor who is
        not a user of this registry, and answers an adapter they do not see as not found."""
        self._bootstrap(records, actor)
        self._member_roles(records, actor)
        access = self.access(records, actor)
        if name is not None:
            self.visible(records, access, name)
        return access.roles_on(name)

    @staticmethod
    def visible(records: Records, access: Access, name: str) -> None:
        """Refuse the adapter ``name`` when ``access`` does not see it, exactly as if it did not exist."""
        if not access.sees(name):
            raise no_such_adapter(name, [n for n in records.adapter_names() if access.sees(n)])

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

    def allowed(self, records: Records, actor: Actor, action: str, name: str | None = None) -> None:
        """Read-only form of :meth:`require`: in a registry without users the actor would become admin."""
        if records.user_count():
            self._member_roles(records, actor)
            self._check_access(records, actor, action, name)

    def require(self, records: Records, actor: Actor, action: str, name: str | None = None) -> set[str]:
        """The actor's roles that count for ``action`` (on the adapter ``name``, when it is about one: their
        global grants and those for its namespace), after checking they include one that ``action`` needs.
        An adapter the actor does not see is answered as not found, before any role is checked."""
        self._bootstrap(records, actor)
        self._member_roles(records, actor)
        return self._check_access(records, actor, action, name)

    def _check_access(self, records: Records, actor: Actor, action: str, name: str | None) -> set[str]:
        access = self.access(records, actor)
        if action == "push" and name is not None and not access.sees(name):
            # a push names what it creates: refused alike whether the adapter exists or not (nothing leaks)
            where = f"namespace {namespace_of(name)!r}" if namespace_of(name) else "names without a namespace"
            held = ", ".join(sorted(g.label for g in access.grants)) or "no role"
            raise PermissionDenied(
                f"{actor.name} may not push {name}: they hold {held}, none of it for {where}; an admin grants it with "
                f"`adapters users add {actor.name} --role author"
                + (f" --namespace {namespace_of(name)}`" if namespace_of(name) else "`"),
                actor.name,
            )
        if name is not None:
            self.visible(records, access, name)
        roles = access.roles_for(action, name)
        _check(actor, roles, action, access, name)
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
        namespace: str | None = None,
    ) -> UserInfo:
        """Register ``name`` (if new), grant ``roles`` (for ``namespace`` only, when given) and register
        ``public_key``. Admins only.

        Signed by the admin (``signer``) when the policy in force requires signatures: the signed
        action names the user, the roles granted (and their namespace) and the key registered, so
        nobody without an admin's private key can add a user, a role or a key that ``audit verify``
        accepts. ``admin`` is never granted for a namespace (:mod:`registry.domain.roles`).
        """
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise InvalidInput(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        if namespace is not None:
            _check_scope(name, roles, validate_namespace(namespace))
        Actor(name)  # the same rule for a user's name as for an actor's
        fingerprint = signing.fingerprint(public_key, "the --public-key file") if public_key is not None else None
        with self.store.write() as records:
            self.require(records, actor, "users add")
            _refuse_removed(records, name)
            at = self.clock()
            exists = records.user(name) is not None
            held = self.scoped_roles(records, name)
            new_roles = [r for r in dict.fromkeys(roles) if ScopedRole(r, namespace) not in held]
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
            scope = {"namespace": namespace} if namespace is not None and new_roles else {}
            fields.update(scope)  # only when scoped: an unscoped grant signs what it signed before scopes
            signed = self.sign(records, actor, active_policy(records).policy, signer, fields)
            if not exists:
                records.insert_user(name, at, actor.name)
            for role in new_roles:
                records.insert_grant(RoleGrant(name, role, at, actor.name, namespace=namespace))
            if new_key and public_key is not None and fingerprint is not None:
                _refuse_shared_key(records, fingerprint, name)
                records.insert_key(name, public_key, fingerprint, at, actor.name)
            payload: dict[str, Any] = {"roles_granted": new_roles, **scope}
            payload["key_fingerprint"] = fingerprint if new_key else None
            if new_key and public_key is not None:
                payload["public_key"] = public_key.decode("ascii")
            self.audit.append(records, actor, action, name, payload, signed=signed)
            return self._info(records, name)

    def revoke_role(
        self,
        actor: Actor,
        name: str,
        role: str,
        reason: str | None = None,
        signer: signing.Signer | None = None,
        namespace: str | None = None,
    ) -> UserInfo:
        """Withdraw ``role`` from ``name``: the global grant, or with ``namespace`` the grant for that
        namespace (admins only, signed like ``users add``). The grant stays in the history; what ``name``
        did with the role stays valid. The last admin's admin role is not revoked."""
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        wanted = ScopedRole(role, validate_namespace(namespace) if namespace is not None else None)
        with self.store.write() as records:
            self.require(records, actor, "users revoke-role")
            info = self._info(records, name)
            _refuse_removed(records, name)
            if wanted.label not in info.roles:
                held = ", ".join(info.roles) or "no role"
                others = [r for r in info.roles if ScopedRole.parse(r).role == role]
                hint = f"; pass --namespace to revoke {' or '.join(others)}" if others and namespace is None else ""
                raise NotFound(
                    f"{name} does not hold the role {wanted.label!r} (they hold {held}); nothing to revoke{hint}"
                )
            if role == "admin":
                _refuse_last_admin(records, name, "revoke their admin role")
            at = self.clock()
            scope = {"namespace": namespace} if namespace is not None else {}
            fields = {"action": "role revoke", "subject": name, "roles_revoked": [role], "reason": reason,
                      "actor": actor.name, "at": at, **scope}  # fmt: skip
            signed = self.sign(records, actor, active_policy(records).policy, signer, fields)
            for grant in self.grants_in_force(records, name):
                if ScopedRole(grant.role, grant.namespace) == wanted and grant.id is not None:
                    records.insert_revocation(RoleRevocation(grant.id, name, role, at, actor.name, reason))
            self.audit.append(records, actor, "role revoke", name, {"roles_revoked": [role], "reason": reason,
                              **scope}, signed=signed)  # fmt: skip
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
                    grants.append(GrantInfo(g.role, g.granted_at, g.granted_by, namespace=g.namespace))
                else:
                    grants.append(
                        GrantInfo(g.role, g.granted_at, g.granted_by, r.revoked_at, r.revoked_by, r.reason, g.namespace)
                    )
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
        scoped = sorted_roles(self.scoped_roles(records, name))
        return UserInfo(
            name=name,
            roles=tuple(r.label for r in scoped),
            role_scopes=scoped,
            key_fingerprint=key.fingerprint if key and removal is None else None,
            created_at=user.created_at,
            created_by=user.created_by,
            removed_at=removal.removed_at if removal else None,
            removed_by=removal.removed_by if removal else None,
        )


def _check(actor: Actor, roles: set[str], action: str, access: Access, name: str | None) -> None:
    needed = required_roles(action)
    if not roles & needed:
        have = ", ".join(sorted(roles)) or "no role"
        uncounted = sorted(g.label for g in access.grants if g.namespace is not None and g.role not in roles)
        if uncounted:  # grants for other namespaces (or, for the registry's own actions, any namespace)
            have += f" that counts here ({', '.join(uncounted)} {'do' if len(uncounted) > 1 else 'does'} not count "
            have += f"for {name})" if name is not None and action not in REGISTRY_WIDE else "for the whole registry)"
        raise PermissionDenied(
            f"{actor.name} may not {action}: it needs one of the roles {', '.join(sorted(needed))}, and "
            f"{actor.name} has {have}; an admin grants roles with `adapters users add {actor.name} --role ROLE`",
            actor.name,
        )


def _check_scope(name: str, roles: Sequence[str], namespace: str) -> None:
    if not roles:
        raise InvalidInput(f"--namespace {namespace} scopes the roles granted; give them with --role ROLE")
    if "admin" in roles:
        raise InvalidInput(
            f"admin is never granted for one namespace: an admin administers the registry itself (users, policies, "
            f"tokens, gc), which no namespace owns; grant {name} the namespace's roles instead "
            f"(`adapters users add {name} --role author --namespace {namespace}`)"
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
