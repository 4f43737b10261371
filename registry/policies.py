"""Which policy is active: set per registry or per channel, stored with its content and digest.

The active policy for a channel is the latest one set for that channel, else the latest
one set for the registry, else the built-in ``policies/default.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.audit.log import AuditLog
from registry.domain.actor import Actor
from registry.domain.clock import Clock
from registry.domain.documents import DocumentError, as_text, read_document
from registry.domain.policy import Policy
from registry.domain.refs import validate_channel
from registry.domain.signing import Signer
from registry.domain.suggest import did_you_mean
from registry.errors import InvalidInput, NotFound, PolicyError
from registry.storage.records import Records, RecordStore

if TYPE_CHECKING:
    from registry.identity import Identity

__all__ = [
    "REGISTRY_SCOPE",
    "ActivePolicy",
    "Policies",
    "active_policy",
    "builtin_policies",
    "builtin_policy",
    "policy_source",
]

REGISTRY_SCOPE = "*"


def builtin_policies() -> list[str]:
    """The names of the policies shipped in ``policies/`` (``default``, ``regulated``, ...)."""
    return sorted(
        p.name.removesuffix(".yaml") for p in files("registry._policies").iterdir() if p.name.endswith(".yaml")
    )


def builtin_policy(name: str = "default") -> str:
    """The text of a policy shipped in ``policies/``."""
    if name not in builtin_policies():
        raise NotFound(
            f"no built-in policy {name!r}{did_you_mean(name, builtin_policies())}; built in: {', '.join(builtin_policies())}"
        )
    resource = files("registry._policies").joinpath(f"{name}.yaml")
    return resource.read_text(encoding="utf-8")


def policy_source(path_or_name: str | Path) -> tuple[str, str]:
    """(content, source) of a policy given as a file's path or a built-in name; an existing file wins."""
    text = str(path_or_name)
    path = Path(text).expanduser()
    if not path.exists() and not path.is_symlink():
        if text in builtin_policies():
            return builtin_policy(text), f"policies/{text}.yaml (built in)"
        if path.suffix == "" and "/" not in text:  # a name, not a path: say which names exist
            raise NotFound(
                f"policy {text!r} is neither a file nor a built-in policy{did_you_mean(text, builtin_policies())}; "
                f"built in: {', '.join(builtin_policies())} (or give a YAML file's path)"
            )
    try:
        return as_text(read_document(path, f"policy file {path}"), f"policy file {path}"), str(path)
    except DocumentError as exc:
        raise PolicyError(f"{exc}; a policy is a YAML file of at most 1 MiB (see policies/default.yaml)") from None


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActivePolicy:
        """Rebuilt from :meth:`to_dict` (a server's answer): the policy parsed again from its content."""
        scope_text = str(d["scope"])
        scope = REGISTRY_SCOPE if scope_text == "registry" else scope_text.removeprefix("channel ")
        policy = Policy.parse(str(d["content"]), f"policy {d.get('name')}")
        return cls(policy, scope, d.get("set_at"), d.get("set_by"))


def active_policy(records: Records, channel: str | None = None) -> ActivePolicy:
    """The policy in force: for a channel its own, else the registry's, else the built-in default."""
    scopes = [channel, REGISTRY_SCOPE] if channel else [REGISTRY_SCOPE]
    for scope in scopes:
        stored = records.latest_policy(scope)
        if stored is not None:
            return ActivePolicy(
                Policy.parse(stored.content, f"policy #{stored.id}"), scope, stored.set_at, stored.set_by
            )
    return ActivePolicy(Policy.parse(builtin_policy(), "policies/default.yaml"), REGISTRY_SCOPE, None, None)


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

    def set(
        self,
        actor: Actor,
        path: str | Path,
        channel: str | None = None,
        signer: Signer | None = None,
        document: tuple[str, str] | None = None,
    ) -> ActivePolicy:
        """Make a policy active for the registry or one channel: a YAML file, or a built-in policy by name
        (``default``, ``regulated``), or ``document``: its (content, source) as a client read it. Admins only.

        Signed by the admin when the policy in force (before the change) requires signatures. A policy
        that requires signatures is refused on a registry whose root of trust is not initialised
        (``adapters init``): signed governance needs an admin key established by the chain.
        """
        content, source = document if document is not None else policy_source(path)  # (content, source): read elsewhere
        policy = Policy.parse(content, source)  # refuse a bad policy before anything is stored
        scope = validate_channel(channel) if channel else REGISTRY_SCOPE
        subject = "registry" if scope == REGISTRY_SCOPE else f"channel {scope}"
        with self.store.write() as records:
            self.identity.require(records, actor, "policy set")
            if policy.signatures_required and records.meta("initialised_at_seq") is None:
                raise InvalidInput(
                    f"policy {policy.name!r} requires signatures, but this registry has no root of trust yet: "
                    "run `adapters init --admin NAME --public-key FILE` first (it records the admin's key that "
                    "every later signed action is checked against), then set the policy again"
                )
            at = self.clock()
            fields = {"action": "policy set", "subject": subject, "policy": policy.digest, "actor": actor.name,
                      "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records, channel).policy, signer, fields)
            records.insert_policy(scope, policy.name, content, policy.digest, at, actor.name)
            self.audit.append(
                records,
                actor,
                "policy set",
                subject,
                {
                    "name": policy.name,
                    "digest": policy.digest,
                    "source": source if document is not None else str(path),
                    "signatures": policy.signatures_required,
                },
                signed=signed,
            )
        return ActivePolicy(policy, scope, at, actor.name)
