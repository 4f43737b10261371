"""Users, their role grants and their keys."""

from __future__ import annotations

from sqlalchemy import func, select

from registry.storage.records._base import (
    Queries,
    RoleGrant,
    RoleRevocation,
    StoredKey,
    StoredUser,
    UserRemoval,
)
from registry.storage.tables import (
    ROLE_GRANT_SCOPES,
    ROLE_GRANTS,
    ROLE_REVOCATIONS,
    USER_KEYS,
    USER_REMOVALS,
    USERS,
)

__all__ = ["PeopleQueries"]


class PeopleQueries(Queries):
    # -- users, roles, keys ---------------------------------------------------------------------------

    def user_count(self) -> int:
        return int(self._session.execute(select(func.count()).select_from(USERS)).scalar_one())

    def user(self, name: str) -> StoredUser | None:
        row = self._session.execute(select(USERS).where(USERS.c.name == name)).first()
        return StoredUser(row.name, row.created_at, row.created_by) if row is not None else None

    def users(self) -> list[StoredUser]:
        return [StoredUser(r.name, r.created_at, r.created_by) for r in self._all(select(USERS).order_by(USERS.c.name))]

    def insert_user(self, name: str, at: str, by: str) -> None:
        self._insert_fact(USERS, {"name": name, "created_at": at, "created_by": by})

    def grants(self, user: str | None = None) -> list[RoleGrant]:
        """Role grants with their namespaces, oldest first (one user's, or everyone's when None)."""
        g = ROLE_GRANTS
        if self._exists(ROLE_GRANT_SCOPES):
            s = ROLE_GRANT_SCOPES
            query = select(g, s.c.namespace).select_from(g.outerjoin(s, s.c.grant_id == g.c.id)).order_by(g.c.id)
        else:  # schema 4 or earlier, not upgraded yet: every grant is for the whole registry
            query = select(g).order_by(g.c.id)
        if user is not None:
            query = query.where(g.c.user_name == user)
        return [
            RoleGrant(r.user_name, r.role, r.granted_at, r.granted_by, r.id, getattr(r, "namespace", None))
            for r in self._all(query)
        ]

    def insert_grant(self, grant: RoleGrant) -> None:
        """A role grant, and its namespace (a fact of its own) when it is scoped to one."""
        row = self._insert_fact(
            ROLE_GRANTS,
            {
                "user_name": grant.user,
                "role": grant.role,
                "granted_at": grant.granted_at,
                "granted_by": grant.granted_by,
            },
        )
        if grant.namespace is not None:
            self._insert_fact(ROLE_GRANT_SCOPES, {"grant_id": int(row.id), "namespace": grant.namespace})

    def keys(self, user: str | None = None) -> list[StoredKey]:
        """Registered public keys, oldest first (one user's, or everyone's when None)."""
        query = select(USER_KEYS).order_by(USER_KEYS.c.id)
        if user is not None:
            query = query.where(USER_KEYS.c.user_name == user)
        return [
            StoredKey(r.id, r.user_name, r.public_key.encode("ascii"), r.fingerprint, r.added_at, r.added_by)
            for r in self._all(query)
        ]

    def key_owners(self, fingerprint: str) -> list[str]:
        """Users a key fingerprint was ever registered to."""
        rows = self._all(select(USER_KEYS.c.user_name).where(USER_KEYS.c.fingerprint == fingerprint).distinct())
        return sorted(r.user_name for r in rows)

    def insert_key(self, user: str, public_key: bytes, fingerprint: str, at: str, by: str) -> None:
        self._insert_fact(
            USER_KEYS,
            {
                "user_name": user,
                "public_key": public_key.decode("ascii"),
                "fingerprint": fingerprint,
                "added_at": at,
                "added_by": by,
            },
        )

    def revocations(self, user: str | None = None) -> list[RoleRevocation]:
        """Role grants withdrawn, oldest first (one user's, or everyone's when None)."""
        if not self._exists(ROLE_REVOCATIONS):
            return []
        t = ROLE_REVOCATIONS
        query = select(t).order_by(t.c.id)
        if user is not None:
            query = query.where(t.c.user_name == user)
        return [
            RoleRevocation(r.grant_id, r.user_name, r.role, r.revoked_at, r.revoked_by, r.reason)
            for r in self._all(query)
        ]

    def insert_revocation(self, revocation: RoleRevocation) -> None:
        self._insert_fact(
            ROLE_REVOCATIONS,
            {
                "grant_id": revocation.grant_id,
                "user_name": revocation.user,
                "role": revocation.role,
                "revoked_at": revocation.revoked_at,
                "revoked_by": revocation.revoked_by,
                "reason": revocation.reason,
            },
        )

    def removals(self) -> list[UserRemoval]:
        """Users removed, oldest first."""
        if not self._exists(USER_REMOVALS):
            return []
        t = USER_REMOVALS
        return [
            UserRemoval(r.user_name, r.removed_at, r.removed_by, r.reason)
            for r in self._all(select(t).order_by(t.c.id))
        ]

    def removal(self, user: str) -> UserRemoval | None:
        if not self._exists(USER_REMOVALS):
            return None
        t = USER_REMOVALS
        r = self._session.execute(select(t).where(t.c.user_name == user)).first()
        return UserRemoval(r.user_name, r.removed_at, r.removed_by, r.reason) if r is not None else None

    def insert_removal(self, removal: UserRemoval) -> None:
        self._insert_fact(
            USER_REMOVALS,
            {
                "user_name": removal.user,
                "removed_at": removal.removed_at,
                "removed_by": removal.removed_by,
                "reason": removal.reason,
            },
        )
