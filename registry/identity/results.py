"""What the identity service returns: users, their role grants and keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GrantInfo", "KeyInfo", "UserDetail", "UserInfo"]


@dataclass(frozen=True)
class UserInfo:
    name: str
    roles: tuple[str, ...]
    key_fingerprint: str | None
    created_at: str
    created_by: str
    removed_at: str | None = None  # a removed user keeps their history and can no longer act
    removed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "key_fingerprint": self.key_fingerprint,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "removed_at": self.removed_at,
            "removed_by": self.removed_by,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UserInfo:
        return cls(
            d["name"], tuple(d["roles"]), d.get("key_fingerprint"), d["created_at"], d["created_by"],
            d.get("removed_at"), d.get("removed_by"),
        )  # fmt: skip


@dataclass(frozen=True)
class GrantInfo:
    """A role grant, and its revocation if it was revoked."""

    role: str
    granted_at: str
    granted_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    reason: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "granted_at": self.granted_at,
            "granted_by": self.granted_by,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "reason": self.reason,
            "active": self.active,
        }


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
