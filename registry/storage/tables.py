"""The SQL tables (SQLModel). Rows are only ever inserted: facts are appended, never edited.

Times are stored as ISO-8601 UTC text (``2026-11-22T10:00:00.123456Z``): identical on
SQLite and PostgreSQL, and sortable as text.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import BigInteger, Column, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "ADAPTERS",
    "API_TOKENS",
    "APPEND_ONLY",
    "APPROVALS",
    "AUDIT_EVENTS",
    "CHANNEL_MOVES",
    "EVALS",
    "FACT_TABLE_OBJECTS",
    "META",
    "NOTES",
    "POLICIES",
    "PROBE_REFERENCES",
    "ROLE_GRANTS",
    "ROLE_GRANT_SCOPES",
    "ROLE_REVOCATIONS",
    "TABLE_SINCE",
    "TAGS",
    "TOKEN_REVOCATIONS",
    "TOKEN_USES",
    "TRANSITIONS",
    "USERS",
    "USER_KEYS",
    "USER_REMOVALS",
    "VERIFICATIONS",
    "VERSIONS",
    "AdapterRow",
    "ApiTokenRow",
    "ApprovalRow",
    "AuditEventRow",
    "ChannelMoveRow",
    "EvalRow",
    "MetaRow",
    "NoteRow",
    "PolicyRow",
    "ProbeReferenceRow",
    "RoleGrantRow",
    "RoleGrantScopeRow",
    "RoleRevocationRow",
    "TagRow",
    "TokenRevocationRow",
    "TokenUseRow",
    "TransitionRow",
    "UserKeyRow",
    "UserRemovalRow",
    "UserRow",
    "VerificationRow",
    "VersionRow",
    "metadata",
]

metadata = SQLModel.metadata


class MetaRow(SQLModel, table=True):
    """Facts about the database itself (its schema version)."""

    __tablename__ = "registry_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


class AdapterRow(SQLModel, table=True):
    """A named line of versions."""

    __tablename__ = "adapters"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=128)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)


class VersionRow(SQLModel, table=True):
    """An immutable version: its canonical manifest, its digest and, for filtering, copies of a few of its facts."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("adapter_id", "number", name="uq_versions_adapter_number"),)

    id: int | None = Field(default=None, primary_key=True)
    adapter_id: int = Field(foreign_key="adapters.id", index=True)
    number: int
    digest: str = Field(unique=True, index=True, max_length=71)  # "sha256:" + 64 hex
    manifest: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)
    peft_type: str = Field(max_length=64, index=True)
    r: int | None = None
    base_name: str | None = Field(default=None, max_length=512, index=True)
    base_fingerprint: str | None = Field(default=None, max_length=71, index=True)
    quantization: str = Field(max_length=16)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))


class EvalRow(SQLModel, table=True):
    """An evaluation result, appended at push or later."""

    __tablename__ = "evals"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    metric: str = Field(max_length=128)
    value: float
    dataset: str | None = Field(default=None, max_length=255)
    recorded_at: str = Field(max_length=32)
    recorded_by: str = Field(max_length=255)
    source: str = Field(max_length=32)


class VerificationRow(SQLModel, table=True):
    """A verification report (``adapters verify``), appended whatever its outcome."""

    __tablename__ = "verifications"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)
    mode: str = Field(max_length=16)
    passed: bool
    base_fingerprint: str | None = Field(default=None, max_length=71)
    report: str = Field(sa_column=Column(Text, nullable=False))


class ProbeReferenceRow(SQLModel, table=True):
    """The outputs of the first passing load check for a version, base and load setting."""

    __tablename__ = "probe_references"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    verification_id: int = Field(foreign_key="verifications.id")
    base_fingerprint: str = Field(max_length=71)
    settings: str = Field(max_length=64)
    sample: str = Field(sa_column=Column(Text, nullable=False))
    digest: str = Field(max_length=71)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)


class UserRow(SQLModel, table=True):
    """A person (or pipeline) known to the registry."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=255)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)


class RoleGrantRow(SQLModel, table=True):
    """A role granted to a user."""

    __tablename__ = "role_grants"

    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(index=True, max_length=255)
    role: str = Field(max_length=32)
    granted_at: str = Field(max_length=32)
    granted_by: str = Field(max_length=255)


class UserKeyRow(SQLModel, table=True):
    """A user's Ed25519 public key; the latest one registered is the user's key."""

    __tablename__ = "user_keys"

    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(index=True, max_length=255)
    public_key: str = Field(sa_column=Column(Text, nullable=False))
    fingerprint: str = Field(index=True, max_length=71)
    added_at: str = Field(max_length=32)
    added_by: str = Field(max_length=255)


class PolicyRow(SQLModel, table=True):
    """A policy made active for the registry (scope ``*``) or one channel; the latest per scope is active."""

    __tablename__ = "policies"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(index=True, max_length=128)
    name: str = Field(max_length=255)
    content: str = Field(sa_column=Column(Text, nullable=False))
    digest: str = Field(max_length=71)
    set_at: str = Field(max_length=32)
    set_by: str = Field(max_length=255)


class TransitionRow(SQLModel, table=True):
    """A lifecycle transition of a version; its latest one gives the version's state."""

    __tablename__ = "transitions"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    action: str = Field(max_length=32)
    from_state: str = Field(max_length=32)
    to_state: str = Field(max_length=32)
    actor: str = Field(max_length=255)
    at: str = Field(max_length=32)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    policy_digest: str | None = Field(default=None, max_length=71)


class ApprovalRow(SQLModel, table=True):
    """An approval or rejection, with the policy it was made under and its signature."""

    __tablename__ = "approvals"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    decision: str = Field(max_length=16)
    actor: str = Field(max_length=255)
    roles: str = Field(max_length=255)  # comma-separated roles held when deciding
    comment: str | None = Field(default=None, sa_column=Column(Text))
    policy_digest: str = Field(max_length=71)
    key_fingerprint: str | None = Field(default=None, max_length=71)
    signature: str | None = Field(default=None, sa_column=Column(Text))
    signed_payload: str | None = Field(default=None, sa_column=Column(Text))
    at: str = Field(max_length=32)


class ChannelMoveRow(SQLModel, table=True):
    """A channel moved to a version (release or rollback); the latest per channel is its target."""

    __tablename__ = "channel_moves"

    id: int | None = Field(default=None, primary_key=True)
    adapter_id: int = Field(foreign_key="adapters.id", index=True)
    channel: str = Field(index=True, max_length=128)
    version_id: int = Field(foreign_key="versions.id", index=True)
    previous_version_id: int | None = Field(default=None, foreign_key="versions.id")
    action: str = Field(max_length=16)
    actor: str = Field(max_length=255)
    at: str = Field(max_length=32)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    policy_digest: str | None = Field(default=None, max_length=71)
    key_fingerprint: str | None = Field(default=None, max_length=71)
    signature: str | None = Field(default=None, sa_column=Column(Text))
    signed_payload: str | None = Field(default=None, sa_column=Column(Text))
    details: str | None = Field(default=None, sa_column=Column(Text))  # JSON: e.g. a merged release's files


class RoleRevocationRow(SQLModel, table=True):
    """A role grant withdrawn (schema 3): the grant it ends, by whom and when. A later grant gives it back."""

    __tablename__ = "role_revocations"

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="role_grants.id", index=True)
    user_name: str = Field(index=True, max_length=255)
    role: str = Field(max_length=32)
    revoked_at: str = Field(max_length=32)
    revoked_by: str = Field(max_length=255)
    reason: str | None = Field(default=None, sa_column=Column(Text))


class RoleGrantScopeRow(SQLModel, table=True):
    """The namespace a role grant is for (schema 5); a grant without one is for the whole registry.

    A row of its own rather than a column of ``role_grants``: the grants recorded before keep every column
    they were hashed with (their facts still verify), and a database not upgraded yet reads as having no
    scoped grant."""

    __tablename__ = "role_grant_scopes"

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="role_grants.id", unique=True, index=True)
    namespace: str = Field(max_length=128, index=True)


class UserRemovalRow(SQLModel, table=True):
    """A user removed (schema 3): their history stays, and they can no longer act."""

    __tablename__ = "user_removals"

    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(unique=True, index=True, max_length=255)
    removed_at: str = Field(max_length=32)
    removed_by: str = Field(max_length=255)
    reason: str | None = Field(default=None, sa_column=Column(Text))


class TagRow(SQLModel, table=True):
    """A tag set on a version after its push (schema 3); a row with no value removes the key. The latest
    row per (version, key) is the tag."""

    __tablename__ = "tags"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    key: str = Field(max_length=128, index=True)
    value: str | None = Field(default=None, sa_column=Column(Text))
    set_at: str = Field(max_length=32)
    set_by: str = Field(max_length=255)


class NoteRow(SQLModel, table=True):
    """A note on a version after its push (schema 3): free text, appended, never edited."""

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)


class ApiTokenRow(SQLModel, table=True):
    """An API token issued to a user (schema 4): the sha256 of its secret, never the secret."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True, index=True, max_length=16)
    user_name: str = Field(index=True, max_length=255)
    label: str | None = Field(default=None, sa_column=Column(Text))
    secret_sha256: str = Field(unique=True, index=True, max_length=64)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=255)
    expires_at: str = Field(max_length=32)


class TokenRevocationRow(SQLModel, table=True):
    """An API token withdrawn (schema 4), by its owner or an admin."""

    __tablename__ = "token_revocations"

    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(foreign_key="api_tokens.token_id", unique=True, index=True, max_length=16)
    revoked_at: str = Field(max_length=32)
    revoked_by: str = Field(max_length=255)
    reason: str | None = Field(default=None, sa_column=Column(Text))


class TokenUseRow(SQLModel, table=True):
    """When a token was last used (schema 4): a convenience for `tokens ls`, not a fact (it is updated,
    at most once a minute per token, and no event records it)."""

    __tablename__ = "token_uses"

    token_id: str = Field(foreign_key="api_tokens.token_id", primary_key=True, max_length=16)
    last_used_at: str = Field(max_length=32)


class AuditEventRow(SQLModel, table=True):
    """The tamper-evident log: each event hashes its content and its predecessor's hash."""

    __tablename__ = "audit_events"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: str = Field(max_length=32)
    actor: str = Field(max_length=255)
    action: str = Field(max_length=64)
    subject: str = Field(index=True, max_length=255)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


#: Tables whose rows are never updated or deleted; the database enforces it with triggers.
APPEND_ONLY = (
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
    "audit_events",
)


def _table(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table behind a SQLModel class (SQLModel sets ``__table__`` without declaring it)."""
    return cast(Table, getattr(model, "__table__"))  # noqa: B009


META = _table(MetaRow)
ADAPTERS = _table(AdapterRow)
VERSIONS = _table(VersionRow)
EVALS = _table(EvalRow)
VERIFICATIONS = _table(VerificationRow)
PROBE_REFERENCES = _table(ProbeReferenceRow)
USERS = _table(UserRow)
ROLE_GRANTS = _table(RoleGrantRow)
USER_KEYS = _table(UserKeyRow)
POLICIES = _table(PolicyRow)
TRANSITIONS = _table(TransitionRow)
APPROVALS = _table(ApprovalRow)
CHANNEL_MOVES = _table(ChannelMoveRow)
ROLE_REVOCATIONS = _table(RoleRevocationRow)
ROLE_GRANT_SCOPES = _table(RoleGrantScopeRow)
USER_REMOVALS = _table(UserRemovalRow)
TAGS = _table(TagRow)
NOTES = _table(NoteRow)
API_TOKENS = _table(ApiTokenRow)
TOKEN_REVOCATIONS = _table(TokenRevocationRow)
TOKEN_USES = _table(TokenUseRow)
AUDIT_EVENTS = _table(AuditEventRow)

#: The schema version that added each table created after the first (reads of an older database not
#: upgraded yet find these tables empty).
TABLE_SINCE = {
    "role_revocations": 3,
    "user_removals": 3,
    "tags": 3,
    "notes": 3,
    "api_tokens": 4,
    "token_revocations": 4,
    "token_uses": 4,
    "role_grant_scopes": 5,
}

#: The fact tables (registry.domain.facts.FACT_TABLES) by name.
FACT_TABLE_OBJECTS = {
    t.name: t
    for t in (
        ADAPTERS, VERSIONS, EVALS, VERIFICATIONS, PROBE_REFERENCES, USERS, ROLE_GRANTS, USER_KEYS, POLICIES,
        TRANSITIONS, APPROVALS, CHANNEL_MOVES, ROLE_REVOCATIONS, USER_REMOVALS, TAGS, NOTES, API_TOKENS,
        TOKEN_REVOCATIONS, ROLE_GRANT_SCOPES,
    )
}  # fmt: skip
