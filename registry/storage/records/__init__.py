"""Every SELECT and INSERT of the registry's records, with typed results.

A :class:`RecordStore` opens transactions; inside one, a :class:`Records` object is the only
way to read or append a record. Services receive domain values (``EvalRecord``,
``TransitionRecord``, ``Event``, ...) or the small stored types defined here, never rows or
sessions. Loads are batched: anything asked for several versions takes one query, not one
per version, and a single version costs the same in a registry of ten versions or a million
(every lookup goes through an index on the ids asked for).

State is never stored: the records a version's state or a channel's target are folded from
come from here, the folds are in :mod:`registry.domain.state`.

Layering: storage returns the domain's value types as its typed results (there is no second,
row-shaped copy of them); the domain imports nothing from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from registry.errors import IntegrityError
from registry.storage.db import SCHEMA_VERSION, Database
from registry.storage.records._base import (
    RoleGrant,
    RoleRevocation,
    StoredKey,
    StoredPolicy,
    StoredProbeReference,
    StoredUser,
    StoredVersion,
    UserRemoval,
    VersionQuery,
)
from registry.storage.records.audit import AuditQueries
from registry.storage.records.facts import FactQueries
from registry.storage.records.governance import GovernanceQueries
from registry.storage.records.people import PeopleQueries
from registry.storage.records.tokens import TokenQueries
from registry.storage.records.upgrade import upgrade
from registry.storage.records.versions import VersionQueries

__all__ = [
    "RecordStore",
    "Records",
    "RoleGrant",
    "RoleRevocation",
    "StoredKey",
    "StoredPolicy",
    "StoredProbeReference",
    "StoredUser",
    "StoredVersion",
    "UserRemoval",
    "VersionQuery",
]


class Records(VersionQueries, FactQueries, GovernanceQueries, PeopleQueries, TokenQueries, AuditQueries):
    """The registry's records inside one transaction (see :class:`RecordStore`): every query there is."""

    def __init__(self, session: Session, db: Database) -> None:
        super().__init__(session, db)


class RecordStore:
    """Transactions over the metadata database (see :class:`registry.storage.db.Database`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def read(self) -> Iterator[Records]:
        with self.db.read() as session:
            yield Records(session, self.db)

    @contextmanager
    def write(self) -> Iterator[Records]:
        """The one write transaction at a time; committed when the block ends without an exception.

        A fact written without the audit event that records it is refused (and nothing committed):
        every fact of the registry is bound to the chain (:mod:`registry.domain.facts`).
        """
        before = self.db.schema_version
        try:
            with self.db.write() as session:
                records = Records(session, self.db)
                if self.db.schema_version < SCHEMA_VERSION:
                    upgrade(records, SCHEMA_VERSION)
                    self.db.schema_version = SCHEMA_VERSION
                yield records
                if records.pending_facts:
                    unbound = ", ".join(f"{f.table}#{f.id}" for f in records.pending_facts)
                    raise IntegrityError(f"facts written without an audit event recording them: {unbound}")
        except BaseException:
            self.db.schema_version = before  # the upgrade, if any, was rolled back with the transaction
            raise
