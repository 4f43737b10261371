"""API tokens: the credential a team registry's server issues, and the only way it knows who calls.

A token's secret is ``adp_`` and 43 URL-safe characters (256 random bits), shown once when it is
created; the ``adp_`` prefix lets secret scanners (GitHub's, gitleaks, trufflehog) find one that
leaked. The registry keeps only the secret's sha256, next to a public id (``tok_`` and 12 hex
digits) that logs, events and listings use instead. A token belongs to one user, has a label, an
expiry, and can be revoked; an expired or revoked token is refused at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.domain.clock import now_iso, parse_iso
from registry.domain.roles import ScopedRole

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "TOKEN_PREFIX",
    "ApiToken",
    "CreatedToken",
    "NewToken",
    "WhoAmI",
    "is_token_id",
    "looks_like_token",
    "new_token",
    "secret_hash",
    "secrets_match",
]

TOKEN_PREFIX = "adp_"
#: How long a token lives unless ``--expires`` says otherwise.
DEFAULT_TOKEN_LIFETIME = "90d"
_SECRET = re.compile(r"^adp_[A-Za-z0-9_-]{43}$")
_ID = re.compile(r"^tok_[0-9a-f]{12}$")


@dataclass(frozen=True)
class NewToken:
    """A token as it is created: the secret, shown once, and what is stored instead of it."""

    id: str
    secret: str

    @property
    def hash(self) -> str:
        return secret_hash(self.secret)


def new_token() -> NewToken:
    return NewToken(id=f"tok_{secrets.token_hex(6)}", secret=TOKEN_PREFIX + secrets.token_urlsafe(32))


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has a token secret's shape (checked before any lookup)."""
    return bool(_SECRET.match(text))


def is_token_id(text: str) -> bool:
    return bool(_ID.match(text))


def secret_hash(secret: str) -> str:
    """What the registry stores of a secret: its sha256 (a 256-bit random secret needs no slow hash)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secrets_match(stored_hash: str, presented: str) -> bool:
    """The presented secret's hash against the stored one, in constant time."""
    return hmac.compare_digest(stored_hash.encode("ascii"), secret_hash(presented).encode("ascii"))


@dataclass(frozen=True)
class ApiToken:
    """A token as the registry records it (never its secret)."""

    id: str
    user: str
    label: str | None
    created_at: str
    created_by: str
    expires_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    last_used_at: str | None = None

    def state(self, now: str | None = None) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now`` (an ISO timestamp; default: this moment)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if parse_iso(self.expires_at) <= parse_iso(now or now_iso()) else "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "last_used_at": self.last_used_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApiToken:
        """The record of :meth:`to_dict` (its ``state``, computed at a time, is not part of it)."""
        keys = ("id", "user", "label", "created_at", "created_by", "expires_at", "revoked_at", "revoked_by",
                "last_used_at")  # fmt: skip
        fields: dict[str, Any] = {k: d.get(k) for k in keys}
        return cls(**fields)


@dataclass(frozen=True)
class WhoAmI:
    """Who the registry takes the caller for, and which registry it is."""

    user: str
    roles: tuple[str, ...]  # ``reviewer`` (the whole registry) or ``reviewer@credit`` (one namespace)
    registry: str  # a server's URL, or where an embedded registry keeps its records
    registry_id: str
    registry_key: str | None  # the fingerprint of the key that signs checkpoints
    token: ApiToken | None = None  # the token the caller authenticated with (remote only)

    def to_dict(self) -> dict[str, object]:
        return {
            "user": self.user,
            "roles": [ScopedRole.parse(r).to_dict() for r in self.roles],
            "registry": self.registry,
            "registry_id": self.registry_id,
            "registry_key": self.registry_key,
            "token": None if self.token is None else {
                "id": self.token.id, "label": self.token.label, "expires_at": self.token.expires_at,
            },
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any], registry: str | None = None) -> WhoAmI:
        token = d.get("token")
        roles = d.get("roles") or []
        return cls(
            user=str(d["user"]),
            roles=tuple(ScopedRole.from_dict(r).label for r in roles),
            registry=registry or str(d.get("registry")),
            registry_id=str(d["registry_id"]),
            registry_key=None if d.get("registry_key") is None else str(d["registry_key"]),
            token=None if not isinstance(token, dict) else ApiToken(
                id=str(token["id"]), user=str(d["user"]), label=token.get("label"), created_at="", created_by="",
                expires_at=str(token["expires_at"]),
            ),
        )  # fmt: skip


@dataclass(frozen=True)
class CreatedToken:
    """A token just issued: the secret (shown once, never stored) and the record kept of it."""

    secret: str
    token: ApiToken

    def to_dict(self) -> dict[str, object]:
        return {"secret": self.secret, **self.token.to_dict()}
