"""The audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from registry.domain.audit import Event
from registry.storage.records._base import (
    Queries,
    _event,
    _like_pattern,
)
from registry.storage.tables import AUDIT_EVENTS, FACT_TABLE_OBJECTS, META, TABLE_SINCE

__all__ = ["AuditQueries"]


class AuditQueries(Queries):
    # -- the audit log ------------------------------------------------------------------------------------

    def last_event(self) -> Event | None:
        row = self._session.execute(select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq.desc()).limit(1)).first()
        return _event(row) if row is not None else None

    def first_event(self) -> Event | None:
        row = self._session.execute(select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq).limit(1)).first()
        return _event(row) if row is not None else None

    def insert_event(self, event: Event) -> None:
        self._session.execute(
            AUDIT_EVENTS.insert().values(
                seq=event.seq,
                at=event.at,
                actor=event.actor,
                action=event.action,
                subject=event.subject,
                payload=event.payload,
                prev_hash=event.prev_hash,
                hash=event.hash,
            )
        )

    def events(self, subject: str | None = None, adapter: str | None = None, action: str | None = None) -> list[Event]:
        """Events in order: all, one subject's, or (``adapter``) an adapter's and its versions'; ``action``
        keeps those of one action (every ``push``, say)."""
        query = select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq)
        if action is not None:
            query = query.where(AUDIT_EVENTS.c.action == action)
        if subject is not None:
            query = query.where(AUDIT_EVENTS.c.subject == subject)
        if adapter is not None:
            query = query.where(
                (AUDIT_EVENTS.c.subject == adapter)
                | AUDIT_EVENTS.c.subject.like(f"{_like_pattern(adapter)}:%", escape="\\")
            )
        return [_event(r) for r in self._all(query)]

    def refusals(self) -> list[Event]:
        """The events recording refused governance attempts (``approve refused``, ``release refused``, ...)."""
        query = select(AUDIT_EVENTS).where(AUDIT_EVENTS.c.action.like("% refused")).order_by(AUDIT_EVENTS.c.seq)
        return [_event(r) for r in self._all(query)]

    # -- what verification reads -----------------------------------------------------------------------

    def fact_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a fact table as stored, in id order (verification hashes each)."""
        t = FACT_TABLE_OBJECTS[table]
        if not self._exists(t):
            return []
        return [r._asdict() for r in self._all(select(t).order_by(t.c.id))]

    def create_missing_tables(self) -> list[str]:
        """Create the tables a later schema added (an upgrade, in its write transaction); their names."""
        created = self._db.create_missing_tables(self._session.connection())
        if created:
            self._db.schema_version = max(self._db.schema_version, max(TABLE_SINCE.get(t, 1) for t in created))
        return created

    def meta(self, key: str) -> str | None:
        value = self._session.execute(select(META.c.value).where(META.c.key == key)).scalar()
        return str(value) if value is not None else None

    def set_meta(self, key: str, value: str) -> None:
        """Facts about the database itself (schema version, registry id): not facts of the registry."""
        if self.meta(key) is None:
            self._session.execute(META.insert().values(key=key, value=value))
        else:
            self._session.execute(META.update().where(META.c.key == key).values(value=value))
