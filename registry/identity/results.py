"""What the identity service returns: users, their role grants and keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["UserInfo"]


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
