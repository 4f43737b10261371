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
"""

from __future__ import annotations

from registry.types import ROLES

__all__ = ["PERMISSIONS", "ROLES", "required_roles"]


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
