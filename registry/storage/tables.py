"""The SQL tables (SQLModel). Rows are only ever inserted: facts are appended, never edited.

Times are stored as ISO-8601 UTC text (``2026-11-22T10:00:00.123456Z``): identical on
SQLite and PostgreSQL, and sortable as text.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "AdapterRow",
    "EvalRow",
    "MetaRow",
    "ProbeReferenceRow",
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
