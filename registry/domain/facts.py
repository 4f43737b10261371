"""Facts bound to the audit chain: every fact row is hashed, and its hash travels in an audit event.

A fact is one row of a fact table (a version and its manifest, an eval, a verification report, an
approval, a transition, a channel move, a user, a role grant, a key, a policy, ...). The row is
written in the same transaction as the audit event that records ``{table, id, hash}`` for it, so
whoever edits, deletes or inserts a row outside the registry's code path leaves a row whose hash
no event records, or an event whose row is gone, and ``adapters audit verify`` names both.

The hash is ``sha256`` of the canonical JSON ``{"table": T, "row": {column: value, ...}}`` of the
row as stored (ids included: they are how other rows refer to it), so it is the same on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.domain.canonical import canonical_json

__all__ = ["BOUND_FROM_THE_START", "FACT_TABLES", "FactRef", "fact_hash", "legacy_digest"]

#: Tables whose rows are facts (bound to events). Order: how verification reports them.
FACT_TABLES = (
    "adapters",
    "versions",
    "evals",
    "verifications",
    "probe_references",
    "users",
    "role_grants",
    "user_keys",
    "policies",
    "transitions",
    "approvals",
    "channel_moves",
    "role_revocations",
    "user_removals",
    "tags",
    "notes",
    "api_tokens",
    "token_revocations",
    "role_grant_scopes",
)

#: Fact tables added after facts were bound to events (schema 3 on): none of their rows is legacy, so a
#: row no event records is always one inserted outside the registry.
BOUND_FROM_THE_START = frozenset(
    {"role_revocations", "user_removals", "tags", "notes", "api_tokens", "token_revocations", "role_grant_scopes"}
)


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return value
    return str(value)


def fact_hash(table: str, row: Mapping[str, Any]) -> str:
    """The hash an event records for one stored row."""
    body = {"table": table, "row": {k: _plain(v) for k, v in row.items()}}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class FactRef:
    """One fact as an event records it."""

    table: str
    id: int
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "id": self.id, "hash": self.hash}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FactRef:
        return cls(str(d["table"]), int(d["id"]), str(d["hash"]))


def legacy_digest(hashes: list[str]) -> str:
    """The digest over rows written before facts were bound (their hashes in id order)."""
    return hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest()
