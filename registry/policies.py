"""Which policy is active: set per registry or per channel, stored with its content and digest.

The active policy for a channel is the latest one set for that channel, else the latest
one set for the registry, else the built-in ``policies/default.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from registry.audit.log import AuditLog
from registry.domain.clock import now_iso
from registry.domain.policy import Policy
from registry.domain.refs import validate_channel
from registry.errors import InvalidInput
from registry.identity import Identity
from registry.storage.db import Database
from registry.storage.tables import PolicyRow

__all__ = ["ActivePolicy", "Policies", "builtin_policy"]

_POLICIES = PolicyRow.__table__  # type: ignore[attr-defined]
REGISTRY_SCOPE = "*"


def builtin_policy(name: str = "default") -> str:
    """The text of a policy shipped in ``policies/``."""
    resource = files("registry._policies").joinpath(f"{name}.yaml")
    return resource.read_text(encoding="utf-8")


@dataclass(frozen=True)
class ActivePolicy:
    policy: Policy
    scope: str  # "*" for the registry, else a channel
    set_at: str | None
    set_by: str | None

    @property
    def builtin(self) -> bool:
        return self.set_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.policy.name,
            "digest": self.policy.digest,
            "scope": "registry" if self.scope == REGISTRY_SCOPE else f"channel {self.scope}",
            "set_at": self.set_at,
            "set_by": self.set_by,
            "builtin": self.builtin,
            "content": self.policy.content,
        }


class Policies:
    def __init__(self, db: Database, identity: Identity, audit: AuditLog) -> None:
        self.db = db
        self.identity = identity
        self.audit = audit

    def active(self, session: Session, channel: str | None = None) -> ActivePolicy:
        scopes = [channel, REGISTRY_SCOPE] if channel else [REGISTRY_SCOPE]
        for scope in scopes:
            row = session.execute(
                select(_POLICIES).where(_POLICIES.c.scope == scope).order_by(_POLICIES.c.id.desc()).limit(1)
            ).first()
            if row is not None:
                return ActivePolicy(Policy.parse(row.content, f"policy #{row.id}"), scope, row.set_at, row.set_by)
        return ActivePolicy(Policy.parse(builtin_policy(), "policies/default.yaml"), REGISTRY_SCOPE, None, None)

    def show(self, channel: str | None = None) -> ActivePolicy:
        with self.db.read() as session:
            return self.active(session, channel)

    def set(self, path: Path, channel: str | None = None) -> ActivePolicy:
        """Make the policy in ``path`` active for the registry or one channel. Admins only."""
        try:
            content = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read policy file {path}: {exc.strerror or exc}") from None
        policy = Policy.parse(content, str(path))  # refuse a bad policy before anything is stored
        scope = validate_channel(channel) if channel else REGISTRY_SCOPE
        with self.db.write() as session:
            self.identity.require(session, "policy set")
            at = now_iso()
            session.execute(
                _POLICIES.insert().values(
                    scope=scope,
                    name=policy.name,
                    content=content,
                    digest=policy.digest,
                    set_at=at,
                    set_by=self.identity.user,
                )
            )
            self.audit.append(
                session,
                self.identity.user,
                "policy set",
                "registry" if scope == REGISTRY_SCOPE else f"channel {scope}",
                {"name": policy.name, "digest": policy.digest, "source": str(path)},
            )
        return ActivePolicy(policy, scope, at, self.identity.user)
