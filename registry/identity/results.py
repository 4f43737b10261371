"""What the identity service returns: users, their role grants and keys.

Each has ``to_dict`` (the JSON of ``users ls``/``users show``) and ``from_dict`` (a remote client
rebuilds them from that JSON): ``X.from_dict(x.to_dict()) == x``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.domain.roles import ScopedRole

__all__ = ["GrantInfo", "KeyInfo", "UserDetail", "UserInfo"]


@dataclass(frozen=True)
class UserInfo:
    name: str
    #: the roles held now: ``reviewer`` for the whole registry, ``reviewer@credit`` for one namespace
    roles: tuple[str, ...]
    key_fingerprint: str | None
    created_at: str
    created_by: str
    removed_at: str | None = None  # a removed user keeps their history and can no longer act
    removed_by: str | None = None
    #: the same roles, structured (``namespace`` None: the whole registry)
    role_scopes: tuple[ScopedRole, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "role_scopes": [r.to_dict() for r in self.role_scopes],
            "key_fingerprint": self.key_fingerprint,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "removed_at": self.removed_at,
            "removed_by": self.removed_by,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UserInfo:
        roles = tuple(str(r) for r in d["roles"])
        scopes = d.get("role_scopes")  # a server of an earlier release sends none: every role was global
        return cls(
            d["name"], roles, d.get("key_fingerprint"), d["created_at"], d["created_by"],
            d.get("removed_at"), d.get("removed_by"),
            tuple(ScopedRole.from_dict(r) for r in scopes) if scopes is not None else tuple(map(ScopedRole.parse, roles)),
        )  # fmt: skip


@dataclass(frozen=True)
class GrantInfo:
    """A role grant (for the whole registry, or for one ``namespace``), and its revocation if it was revoked."""

    role: str
    granted_at: str
    granted_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    reason: str | None = None
    namespace: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def label(self) -> str:
        """``reviewer`` or ``reviewer@credit``."""
        return ScopedRole(self.role, self.namespace).label

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "namespace": self.namespace,
            "granted_at": self.granted_at,
            "granted_by": self.granted_by,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "reason": self.reason,
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GrantInfo:
        return cls(
            d["role"], d["granted_at"], d["granted_by"], d.get("revoked_at"), d.get("revoked_by"), d.get("reason"),
            d.get("namespace"),
        )  # fmt: skip


@dataclass(frozen=True)
class KeyInfo:
    """A public key registered to a user; the latest one is in force, earlier ones still verify what they signed."""

    fingerprint: str
    added_at: str
    added_by: str
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "added_at": self.added_at,
            "added_by": self.added_by,
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeyInfo:
        return cls(d["fingerprint"], d["added_at"], d["added_by"], bool(d["active"]))


@dataclass(frozen=True)
class UserDetail:
    """One user with the history of their roles and keys (``adapters users show``)."""

    user: UserInfo
    grants: tuple[GrantInfo, ...]
    keys: tuple[KeyInfo, ...]
    removal_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.user.to_dict(),
            "removal_reason": self.removal_reason,
            "grants": [g.to_dict() for g in self.grants],
            "keys": [k.to_dict() for k in self.keys],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UserDetail:
        return cls(
            UserInfo.from_dict(d),
            tuple(GrantInfo.from_dict(g) for g in d.get("grants") or ()),
            tuple(KeyInfo.from_dict(k) for k in d.get("keys") or ()),
            d.get("removal_reason"),
        )
