"""The audit log."""

from __future__ import annotations

from sqlalchemy import select

from registry.domain.audit import Event
from registry.storage.records._base import (
    Queries,
    _event,
    _like_pattern,
)
from registry.storage.tables import (
    AUDIT_EVENTS,
)

__all__ = ["AuditQueries"]


class AuditQueries(Queries):
    # -- the audit log ------------------------------------------------------------------------------------

    def last_event(self) -> Event | None:
        row = self._session.execute(select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq.desc()).limit(1)).first()
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

    def events(self, subject: str | None = None, adapter: str | None = None) -> list[Event]:
        """Events in order: all, one subject's, or (``adapter``) an adapter's and its versions'."""
        query = select(AUDIT_EVENTS).order_by(AUDIT_EVENTS.c.seq)
        if subject is not None:
            query = query.where(AUDIT_EVENTS.c.subject == subject)
        if adapter is not None:
            query = query.where(
                (AUDIT_EVENTS.c.subject == adapter)
                | AUDIT_EVENTS.c.subject.like(f"{_like_pattern(adapter)}:%", escape="\\")
            )
        return [_event(r) for r in self._all(query)]
