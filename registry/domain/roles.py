"""Roles and what each action requires. One table; an admin may do everything.

==================  ==============================================================
role                 may
==================  ==============================================================
admin                everything, and alone: grant roles, set policies, collect garbage
                     (``adapters gc``)
author               push versions, add evals, submit for review, deprecate
reviewer, risk       approve or reject (as the policy's approval rule allows)
release-manager      release, roll back, deprecate
risk                 also revoke
auditor              write audit checkpoints
any role but         tag and untag versions
  auditor
any role             add notes to versions
==================  ==============================================================

Verifying, listing, showing, pulling, reading the audit log and checking the stores (``adapters
fsck``) need no role.
Which roles may approve is the policy's choice (``approvals.roles``); an empty list
means any registered user.

**Scopes.** A grant is for the whole registry (``reviewer``) or for one namespace
(``reviewer@credit``: adapters named ``credit/...``). An action on an adapter counts the actor's
grants that cover its name: global ones, and those for its namespace; a name without a namespace
is covered by global grants only. Actions on the registry itself (users, policies, tokens, gc,
checkpoints: :data:`REGISTRY_WIDE`) count global grants only, and ``admin`` is never scoped: an
admin administers the registry, which no namespace owns. A user who holds grants but none covering
an adapter does not see it at all (:class:`Access`): it is answered as not found, so names do not
leak across namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from registry.errors import InvalidInput
from registry.types import ROLES

__all__ = [
    "ANY_SCOPE",
    "NOT_ABOUT_ADAPTERS",
    "PERMISSIONS",
    "REGISTRY_WIDE",
    "ROLES",
    "Access",
    "ScopedRole",
    "adapter_of",
    "namespace_of",
    "required_roles",
    "sorted_roles",
    "validate_namespace",
]


PERMISSIONS: dict[str, frozenset[str]] = {
    "push": frozenset({"author"}),
    "eval add": frozenset({"author", "reviewer", "risk"}),
    "review": frozenset({"author"}),
    "release": frozenset({"release-manager"}),
    "rollback": frozenset({"release-manager"}),
    "deprecate": frozenset({"author", "release-manager"}),
    "revoke": frozenset({"risk"}),
    "users add": frozenset(),
    "users remove": frozenset(),
    "users revoke-role": frozenset(),
    "policy set": frozenset(),
    "gc": frozenset(),
    "tokens create": frozenset(),
    # a token's owner revokes it (the code checks it is theirs); an admin revokes anyone's
    "tokens revoke": frozenset({"author", "reviewer", "risk", "release-manager", "auditor"}),
    "audit checkpoint": frozenset({"auditor"}),
    "tag": frozenset({"author", "reviewer", "risk", "release-manager"}),
    "note": frozenset({"author", "reviewer", "risk", "release-manager", "auditor"}),
}


def required_roles(action: str) -> frozenset[str]:
    """Roles that may perform ``action`` besides admin."""
    return PERMISSIONS[action] | {"admin"}


#: Actions on the actor's own things, where a grant of any scope counts (a scoped user revokes their own token).
ANY_SCOPE = frozenset({"tokens revoke"})
#: Actions on the registry as a whole: only global grants count.
REGISTRY_WIDE = frozenset(
    {"users add", "users remove", "users revoke-role", "policy set", "gc", "tokens create", "audit checkpoint"}
)

_NAMESPACE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def validate_namespace(namespace: str) -> str:
    """``namespace`` if it can scope a grant (the first part of ``NAMESPACE/NAME``), else :class:`InvalidInput`."""
    if len(namespace) > 128 or not _NAMESPACE_RE.match(namespace):
        raise InvalidInput(
            f"invalid namespace {namespace!r}: a namespace is the part of an adapter name before '/', "
            "[a-z0-9]+([._-][a-z0-9]+)* (e.g. --namespace credit for credit/scorer)"
        )
    return namespace


def namespace_of(name: str) -> str | None:
    """The namespace of an adapter name (``credit`` of ``credit/scorer``), None for a name without one."""
    head, sep, _ = name.partition("/")
    return head if sep else None


@dataclass(frozen=True)
class ScopedRole:
    """A role held for the whole registry (``namespace`` None) or for one namespace."""

    role: str
    namespace: str | None = None

    @property
    def label(self) -> str:
        """``reviewer`` or ``reviewer@credit``."""
        return self.role if self.namespace is None else f"{self.role}@{self.namespace}"

    def covers(self, name: str) -> bool:
        """Whether this grant counts for the adapter ``name``."""
        return self.namespace is None or self.namespace == namespace_of(name)

    @classmethod
    def parse(cls, label: str) -> ScopedRole:
        role, _, namespace = label.partition("@")
        return cls(role, namespace or None)

    def to_dict(self) -> dict[str, str | None]:
        return {"role": self.role, "namespace": self.namespace}

    @classmethod
    def from_dict(cls, d: object) -> ScopedRole:
        if isinstance(d, str):
            return cls.parse(d)
        if not isinstance(d, dict):
            raise InvalidInput(f"not a role grant: {d!r}")
        namespace = d.get("namespace")
        return cls(str(d["role"]), None if namespace is None else str(namespace))


#: Audit events whose subject is not an adapter or version: a user, the registry, a channel's policy, the store.
NOT_ABOUT_ADAPTERS = frozenset(
    {
        "registry init", "registry upgrade", "user bootstrap", "user add", "user update", "user remove", "role revoke",
        "token create", "token revoke", "token bootstrap", "policy set", "audit checkpoint", "gc", "gc refused",
    }
)  # fmt: skip


def adapter_of(action: str, subject: str) -> str | None:
    """The adapter an audit event is about (``credit/scorer`` of ``credit/scorer:3``), None when it is not."""
    if action in NOT_ABOUT_ADAPTERS:
        return None
    return subject.partition("@")[0].partition(":")[0]


def sorted_roles(roles: Iterable[ScopedRole]) -> tuple[ScopedRole, ...]:
    """By role, the global grant before the namespaced ones."""
    return tuple(sorted(roles, key=lambda r: (r.role, r.namespace or "")))


@dataclass(frozen=True)
class Access:
    """What one actor sees and with which roles: their grants in force.

    ``everything``: the actor sees every adapter whatever their grants (a registry without users, where
    permission checks are off; an actor who is not a user of an embedded registry, whose reads were
    never checked). Otherwise the actor sees an adapter when a grant covers it, or when they hold no
    grant at all and were never confined to a namespace (``confined``): a user registered without a
    role reads everything, as before scopes, while losing one's last scoped grant widens nothing.
    """

    grants: frozenset[ScopedRole] = frozenset()
    everything: bool = False
    confined: bool = False

    @classmethod
    def of(cls, grants: Iterable[ScopedRole], ever_scoped: bool = False) -> Access:
        held = frozenset(grants)
        return cls(held, confined=ever_scoped and not any(g.namespace is None for g in held))

    @classmethod
    def unrestricted(cls) -> Access:
        return cls(everything=True)

    @property
    def restricted(self) -> bool:
        """Whether some adapters may be hidden from this actor."""
        return (
            not self.everything
            and not any(g.namespace is None for g in self.grants)
            and (bool(self.grants) or self.confined)
        )

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces a restricted actor sees."""
        return frozenset(g.namespace for g in self.grants if g.namespace is not None)

    def sees(self, name: str) -> bool:
        """Whether the adapter ``name`` exists for this actor."""
        return not self.restricted or namespace_of(name) in self.namespaces

    def sees_event(self, action: str, subject: str) -> bool:
        """Whether an audit event is about something this actor sees (events not about an adapter are)."""
        adapter = adapter_of(action, subject)
        return adapter is None or self.sees(adapter)

    def roles_on(self, name: str | None) -> set[str]:
        """The roles that count for an action on the adapter ``name`` (None: on the registry: global only)."""
        return {g.role for g in self.grants if g.namespace is None or (name is not None and g.covers(name))}

    def roles_for(self, action: str, name: str | None) -> set[str]:
        """The roles that count for ``action`` (on the adapter ``name``, if it is about one)."""
        if action in ANY_SCOPE:
            return {g.role for g in self.grants}
        return self.roles_on(None if action in REGISTRY_WIDE else name)
