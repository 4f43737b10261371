"""Users, roles and keys; who may do what.

The actor is ``ADAPTERS_USER`` (or the login name). The first user of a new registry is
its admin: the first time anyone changes anything in a registry that has no users, that
actor is registered with the admin role (an audited ``user bootstrap`` event). After
that only an admin grants roles, registers keys and sets policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from registry.audit.log import AuditLog
from registry.domain import signing
from registry.domain.clock import now_iso
from registry.domain.roles import ROLES, required_roles
from registry.errors import InvalidInput, PermissionDenied
from registry.storage.db import Database
from registry.storage.tables import RoleGrantRow, UserKeyRow, UserRow

__all__ = ["Identity", "UserInfo"]

_USERS = UserRow.__table__  # type: ignore[attr-defined]
_GRANTS = RoleGrantRow.__table__  # type: ignore[attr-defined]
_KEYS = UserKeyRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UserInfo:
    name: str
    roles: tuple[str, ...]
    key_fingerprint: str | None
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "key_fingerprint": self.key_fingerprint,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


class Identity:
    def __init__(self, db: Database, audit: AuditLog, user: str) -> None:
        self.db = db
        self.audit = audit
        self.user = user

    def roles(self, session: Session, name: str) -> set[str]:
        return {r for (r,) in session.execute(select(_GRANTS.c.role).where(_GRANTS.c.user_name == name)).all()}

    def key(self, session: Session, name: str) -> tuple[bytes, str] | None:
        """(public PEM, fingerprint) of the user's latest registered key."""
        row = session.execute(
            select(_KEYS.c.public_key, _KEYS.c.fingerprint)
            .where(_KEYS.c.user_name == name)
            .order_by(_KEYS.c.id.desc())
            .limit(1)
        ).first()
        return (row.public_key.encode("ascii"), row.fingerprint) if row else None

    def keys_by_fingerprint(self, session: Session, name: str) -> dict[str, bytes]:
        """Every key the user has had, by fingerprint (old signatures stay verifiable)."""
        rows = session.execute(select(_KEYS.c.public_key, _KEYS.c.fingerprint).where(_KEYS.c.user_name == name)).all()
        return {r.fingerprint: r.public_key.encode("ascii") for r in rows}

    def _bootstrap(self, session: Session) -> None:
        """Register the actor as admin if the registry has no users yet."""
        if session.execute(select(func.count()).select_from(_USERS)).scalar_one():
            return
        at = now_iso()
        session.execute(_USERS.insert().values(name=self.user, created_at=at, created_by=self.user))
        session.execute(_GRANTS.insert().values(user_name=self.user, role="admin", granted_at=at, granted_by=self.user))
        self.audit.append(
            session, self.user, "user bootstrap", self.user, {"roles": ["admin"], "note": "first user of the registry"}
        )

    def member(self, session: Session) -> set[str]:
        """The actor's roles; refuses an actor who is not a user of this registry."""
        self._bootstrap(session)
        return self._member_roles(session)

    def _member_roles(self, session: Session) -> set[str]:
        if session.execute(select(_USERS.c.id).where(_USERS.c.name == self.user)).first() is None:
            raise PermissionDenied(
                f"{self.user} is not a user of this registry (ADAPTERS_USER={self.user}); an admin adds users with "
                f"`adapters users add {self.user} --role ROLE`",
                self.user,
            )
        return self.roles(session, self.user)

    def allowed(self, session: Session, action: str) -> None:
        """Read-only form of :meth:`require`: in a registry without users the actor would become admin."""
        if session.execute(select(func.count()).select_from(_USERS)).scalar_one():
            self._check(self._member_roles(session), action)

    def require(self, session: Session, action: str) -> set[str]:
        """The actor's roles, after checking they include one that ``action`` needs."""
        roles = self.member(session)
        self._check(roles, action)
        return roles

    def _check(self, roles: set[str], action: str) -> None:
        needed = required_roles(action)
        if not roles & needed:
            have = ", ".join(sorted(roles)) or "no role"
            raise PermissionDenied(
                f"{self.user} may not {action}: it needs one of the roles {', '.join(sorted(needed))}, and "
                f"{self.user} has {have}; an admin grants roles with `adapters users add {self.user} --role ROLE`",
                self.user,
            )

    def add(self, name: str, roles: Sequence[str], public_key: bytes | None) -> UserInfo:
        """Register ``name`` (if new), grant ``roles`` and register ``public_key``. Admins only."""
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise InvalidInput(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        if not name or not name.strip() or len(name) > 255:
            raise InvalidInput(f"invalid user name {name!r}")
        fingerprint = signing.fingerprint(public_key, "the --public-key file") if public_key is not None else None
        with self.db.write() as session:
            self.require(session, "users add")
            at = now_iso()
            exists = session.execute(select(_USERS.c.id).where(_USERS.c.name == name)).first()
            if not exists:
                session.execute(_USERS.insert().values(name=name, created_at=at, created_by=self.user))
            held = self.roles(session, name)
            new_roles = [r for r in dict.fromkeys(roles) if r not in held]
            for role in new_roles:
                session.execute(_GRANTS.insert().values(user_name=name, role=role, granted_at=at, granted_by=self.user))
            current = self.key(session, name)
            new_key = public_key is not None and (current is None or current[1] != fingerprint)
            if new_key:
                assert public_key is not None and fingerprint is not None
                owner = session.execute(
                    select(_KEYS.c.user_name).where(_KEYS.c.fingerprint == fingerprint, _KEYS.c.user_name != name)
                ).first()
                if owner:
                    raise InvalidInput(
                        f"that public key is already registered to {owner.user_name}; every person needs a key of "
                        "their own (separation of duties compares keys)"
                    )
                session.execute(
                    _KEYS.insert().values(
                        user_name=name,
                        public_key=public_key.decode("ascii"),
                        fingerprint=fingerprint,
                        added_at=at,
                        added_by=self.user,
                    )
                )
            if not exists or new_roles or new_key:
                self.audit.append(
                    session,
                    self.user,
                    "user add" if not exists else "user update",
                    name,
                    {"roles_granted": new_roles, "key_fingerprint": fingerprint if new_key else None},
                )
        return self.get(name)

    def get(self, name: str) -> UserInfo:
        with self.db.read() as session:
            return self._info(session, name)

    def _info(self, session: Session, name: str) -> UserInfo:
        row = session.execute(select(_USERS).where(_USERS.c.name == name)).first()
        if row is None:
            raise InvalidInput(f"no user {name!r}; add one with `adapters users add {name} --role ROLE`")
        key = self.key(session, name)
        return UserInfo(
            name=name,
            roles=tuple(sorted(self.roles(session, name))),
            key_fingerprint=key[1] if key else None,
            created_at=row.created_at,
            created_by=row.created_by,
        )

    def list(self) -> list[UserInfo]:
        with self.db.read() as session:
            names = [n for (n,) in session.execute(select(_USERS.c.name).order_by(_USERS.c.name)).all()]
            return [self._info(session, n) for n in names]
