"""API tokens: issued by an admin, revoked by an admin or their owner, checked on every server request.

Who may issue a token:

* an admin, for any user (``token create``, a governing action: signed when the policy in force
  requires signatures);
* the operator, with direct access to the database (the embedded registry on the server host),
  in two bootstrap cases only: on a registry with no users, ``--role admin`` makes the token's
  user the registry's admin (``user bootstrap``); on a registry whose admin has never had a token
  (one made by ``adapters init --admin NAME``), the admin's first token (``token bootstrap``).
  Direct database access is the operator's root of trust; both cases are recorded as what they
  are, and an operator who inserts a token row without its event is caught by ``audit verify``.

The secret is shown once; the registry keeps its sha256 (:mod:`registry.domain.tokens`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from registry.audit.log import AuditLog
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.clock import Clock, format_iso, parse_iso
from registry.domain.tokens import (
    ApiToken,
    CreatedToken,
    NewToken,
    WhoAmI,
    is_token_id,
    looks_like_token,
    new_token,
    secret_hash,
    secrets_match,
)
from registry.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from registry.identity.service import Identity
from registry.policies import active_policy
from registry.storage.records import Records, RecordStore, RoleGrant

__all__ = ["CreatedToken", "Tokens", "WhoAmI"]

#: The longest a token may live (a year and a day): long-lived secrets are how leaks last.
MAX_LIFETIME_S = 366 * 86400
#: `last used` is written at most this often per token (it costs a write).
TOUCH_EVERY_S = 60


class Tokens:
    def __init__(self, store: RecordStore, audit: AuditLog, identity: Identity, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.identity = identity
        self.clock = clock

    def create(
        self,
        actor: Actor,
        user: str,
        label: str | None,
        lifetime_s: int,
        role: str | None = None,
        operator: bool = False,
        signer: signing.Signer | None = None,
    ) -> CreatedToken:
        """Issue a token for ``user`` (see the module documentation for who may). ``operator``: the caller
        has direct database access (the embedded registry), which allows the two bootstrap cases."""
        Actor(user)  # the same rule for a user's name as for an actor's
        if lifetime_s <= 0 or lifetime_s > MAX_LIFETIME_S:
            raise InvalidInput(
                f"a token's lifetime must be between 1s and 366d (asked: {lifetime_s}s); issue a new one before it expires"
            )
        if role is not None and role != "admin":
            raise InvalidInput(
                f"--role {role} is only for bootstrap (--role admin, on a registry with no users); grant roles "
                f"with `adapters users add {user} --role {role}`"
            )
        fresh = new_token()
        with self.store.write() as records:
            at = self.clock()
            token = ApiToken(fresh.id, user, label, at, actor.name, _later(at, lifetime_s))
            if not records.user_count():
                self._bootstrap_admin(records, actor, user, role, operator, token, fresh)
            elif role is not None:
                raise InvalidInput(
                    f"this registry has users already, so --role admin bootstraps nothing; an admin grants roles with "
                    f"`adapters users add {user} --role admin`"
                )
            elif operator and not self._is_admin(records, actor) and self._first_admin_token(records, user):
                records.insert_token(token, fresh.hash)
                self.audit.append(
                    records, actor, "token bootstrap", user,
                    {"token": token.id, "label": label, "expires_at": token.expires_at,
                     "note": "the admin's first token, issued by the operator with direct database access"},
                )  # fmt: skip
            else:
                self.identity.require(records, actor, "tokens create")
                self._target(records, user)
                signed_id = getattr(signer, "signed", lambda name: None)("token")
                if isinstance(signed_id, str) and is_token_id(signed_id) and records.token(signed_id) is None:
                    token = replace(token, id=signed_id)  # the id the admin signed for, prepared by the server
                fields = {"action": "token create", "subject": user, "token": token.id, "label": label,
                          "expires_at": token.expires_at, "actor": actor.name, "at": at}  # fmt: skip
                signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
                records.insert_token(token, fresh.hash)
                self.audit.append(records, actor, "token create", user,
                                  {"token": token.id, "label": label, "expires_at": token.expires_at}, signed=signed)  # fmt: skip
            return CreatedToken(fresh.secret, token)

    def _bootstrap_admin(
        self, records: Records, actor: Actor, user: str, role: str | None, operator: bool, token: ApiToken,
        fresh: NewToken,
    ) -> None:  # fmt: skip
        if role != "admin" or not operator:
            raise InvalidInput(
                f"this registry has no users yet: on the server host, make the first one its admin with "
                f"`adapters tokens create {user} --role admin`"
            )
        records.insert_user(user, token.created_at, actor.name)
        records.insert_grant(RoleGrant(user, "admin", token.created_at, actor.name))
        self.audit.append(
            records, Actor(user), "user bootstrap", user,
            {"roles": ["admin"], "note": "first user of the registry, made admin by the operator", "operator": actor.name},
        )  # fmt: skip
        records.insert_token(token, fresh.hash)
        self.audit.append(
            records, actor, "token bootstrap", user,
            {"token": token.id, "label": token.label, "expires_at": token.expires_at,
             "note": "the first admin's first token, issued by the operator with direct database access"},
        )  # fmt: skip

    def _is_admin(self, records: Records, actor: Actor) -> bool:
        return records.user(actor.name) is not None and "admin" in self.identity.roles(records, actor.name)

    def _first_admin_token(self, records: Records, user: str) -> bool:
        return "admin" in self.identity.roles(records, user) and not records.tokens(user)

    def _target(self, records: Records, user: str) -> None:
        if records.user(user) is None:
            raise NotFound(f"{user} is not a user of this registry; add them first with `adapters users add {user}`")
        removed = records.removal(user)
        if removed is not None:
            raise InvalidInput(f"{user} was removed from this registry at {removed.removed_at}; they get no tokens")

    def list(self, actor: Actor, user: str | None = None) -> list[ApiToken]:
        """Tokens (never their secrets): an admin sees everyone's, anyone else their own."""
        with self.store.read() as records:
            if not self._is_admin(records, actor):
                if user is not None and user != actor.name:
                    raise PermissionDenied(f"only an admin lists another user's tokens ({user}'s)", actor.name)
                user = actor.name
            return records.tokens(user)

    def revoke(
        self, actor: Actor, token_id: str, reason: str | None = None, signer: signing.Signer | None = None
    ) -> ApiToken:
        """Revoke a token at once (its owner, or an admin); signed like other governing actions."""
        with self.store.write() as records:
            token = records.token(token_id)
            admin = self._is_admin(records, actor)
            if token is None or (not admin and token.user != actor.name):  # another's token: not even its existence
                raise NotFound(f"no token {token_id!r} of yours; `adapters tokens ls` lists them")
            if token.revoked_at is not None:
                raise InvalidInput(f"{token_id} was revoked already, at {token.revoked_at} by {token.revoked_by}")
            self.identity.require(records, actor, "tokens revoke")
            at = self.clock()
            fields = {"action": "token revoke", "subject": token.user, "token": token_id, "reason": reason,
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
            records.insert_token_revocation(token_id, at, actor.name, reason)
            self.audit.append(records, actor, "token revoke", token.user, {"token": token_id, "reason": reason},
                              signed=signed)  # fmt: skip
            found = records.token(token_id)
            assert found is not None
            return found

    def authenticate(self, secret: str) -> ApiToken:
        """The token ``secret`` belongs to, if it is active and its user may act; else :class:`Unauthenticated`
        (the same message whether the secret is unknown, malformed, expired or revoked, but which one it
        was is said, for the caller who holds it)."""
        if not looks_like_token(secret):
            raise Unauthenticated("that is not an adapters token (they start with adp_)")
        now = self.clock()
        with self.store.read() as records:
            found = records.token_by_secret_hash(secret_hash(secret))
            if found is None or not secrets_match(found[1], secret):
                raise Unauthenticated("the token is not known to this registry")
            token = found[0]
            state = token.state(now)
            if state == "revoked":
                raise Unauthenticated(f"the token {token.id} was revoked at {token.revoked_at}")
            if state == "expired":
                raise Unauthenticated(f"the token {token.id} expired at {token.expires_at}")
            if records.removal(token.user) is not None:
                raise Unauthenticated(f"{token.user} was removed from this registry")
        if token.last_used_at is None or _seconds_between(token.last_used_at, now) >= TOUCH_EVERY_S:
            with self.store.write() as records:
                records.touch_token(token.id, now)
        return token


def _later(at: str, seconds: int) -> str:
    return format_iso(parse_iso(at) + timedelta(seconds=seconds))


def _seconds_between(earlier: str, later: str) -> float:
    return (parse_iso(later) - parse_iso(earlier)).total_seconds()
