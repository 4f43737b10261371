"""Which policy is active: set per registry or per channel, stored with its content and digest.

The active policy for a channel is the latest one set for that channel, else the latest
one set for the registry, else the built-in ``policies/default.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from registry.audit.log import AuditLog
from registry.domain.actor import Actor
from registry.domain.clock import Clock
from registry.domain.documents import DocumentError, as_text, read_document
from registry.domain.policy import Policy
from registry.domain.refs import validate_channel
from registry.errors import PolicyError
from registry.identity import Identity
from registry.storage.records import Records, RecordStore

__all__ = ["ActivePolicy", "Policies", "builtin_policy"]

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
    def __init__(self, store: RecordStore, identity: Identity, audit: AuditLog, clock: Clock) -> None:
        self.store = store
        self.identity = identity
        self.audit = audit
        self.clock = clock

    @staticmethod
    def active(records: Records, channel: str | None = None) -> ActivePolicy:
        scopes = [channel, REGISTRY_SCOPE] if channel else [REGISTRY_SCOPE]
        for scope in scopes:
            stored = records.latest_policy(scope)
            if stored is not None:
                return ActivePolicy(
                    Policy.parse(stored.content, f"policy #{stored.id}"), scope, stored.set_at, stored.set_by
                )
        return ActivePolicy(Policy.parse(builtin_policy(), "policies/default.yaml"), REGISTRY_SCOPE, None, None)

    def show(self, channel: str | None = None) -> ActivePolicy:
        with self.store.read() as records:
            return self.active(records, channel)

    def set(self, actor: Actor, path: Path, channel: str | None = None) -> ActivePolicy:
        """Make the policy in ``path`` active for the registry or one channel. Admins only."""
        try:
            content = as_text(read_document(path, f"policy file {path}"), f"policy file {path}")
        except DocumentError as exc:
            raise PolicyError(f"{exc}; a policy is a YAML file of at most 1 MiB (see policies/default.yaml)") from None
        policy = Policy.parse(content, str(path))  # refuse a bad policy before anything is stored
        scope = validate_channel(channel) if channel else REGISTRY_SCOPE
        with self.store.write() as records:
            self.identity.require(records, actor, "policy set")
            at = self.clock()
            records.insert_policy(scope, policy.name, content, policy.digest, at, actor.name)
            self.audit.append(
                records,
                actor,
                "policy set",
                "registry" if scope == REGISTRY_SCOPE else f"channel {scope}",
                {"name": policy.name, "digest": policy.digest, "source": str(path)},
            )
        return ActivePolicy(policy, scope, at, actor.name)
