"""The audit report's section on people: every user, role grant and key registration with who made it
and when, and the alert for approvals from users the version's author put in place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.domain.records import ApprovalRecord
from registry.storage.records import Records

__all__ = ["independence_alerts", "people_section"]


def people_section(records: Records) -> dict[str, Any]:
    removals = {r.user: r for r in records.removals()}
    revocations = {r.grant_id: r for r in records.revocations()}
    keys = records.keys()
    latest = {k.user: k.fingerprint for k in keys}
    users = []
    for u in records.users():
        removed = removals.get(u.name)
        users.append(
            {
                "name": u.name,
                "created_at": u.created_at,
                "created_by": u.created_by,
                "removed_at": removed.removed_at if removed else None,
                "removed_by": removed.removed_by if removed else None,
                "removal_reason": removed.reason if removed else None,
            }
        )
    grants = []
    for g in records.grants():
        revoked = revocations.get(g.id) if g.id is not None else None
        grants.append(
            {
                "user": g.user,
                "role": g.role,
                "namespace": g.namespace,
                "granted_at": g.granted_at,
                "granted_by": g.granted_by,
                "revoked_at": revoked.revoked_at if revoked else None,
                "revoked_by": revoked.revoked_by if revoked else None,
            }
        )
    return {
        "users": users,
        "grants": grants,
        "keys": [
            {
                "user": k.user,
                "fingerprint": k.fingerprint,
                "added_at": k.added_at,
                "added_by": k.added_by,
                "active": latest.get(k.user) == k.fingerprint and k.user not in removals,
            }
            for k in keys
        ],
    }


def independence_alerts(
    ref: str, author: str, approvals: Sequence[ApprovalRecord], grantors: Mapping[str, frozenset[str]]
) -> list[dict[str, Any]]:
    """An approval by a user whose account, role or key the version's author granted: an admin who is also
    an author could otherwise create two reviewers and approve alone, with every rule passing."""
    out = []
    for a in approvals:
        if a.decision != "approve" or a.actor == author or author not in grantors.get(a.actor, ()):
            continue
        out.append(
            {
                "severity": "warning",
                "kind": "independence",
                "subject": ref,
                "message": f"the approval of {ref} by {a.actor} at {a.at} came from a user whose account, role or "
                f"key was granted by {author}, the author of {ref}: the approvals may not be independent "
                "(the policy option approvals.independent_of_author refuses them)",
            }
        )
    return out
