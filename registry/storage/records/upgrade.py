"""Upgrading a registry an earlier release wrote, inside the first write transaction that opens it.

Schema 2 binds every fact row to the audit event that records it (:mod:`registry.domain.facts`).
Rows written before (schema 1) have no such events; the upgrade appends one event, ``registry
upgrade``, recording for each fact table how many rows it had, the largest id, and a digest over
those rows' hashes, so that from then on an edit, deletion or insertion among them is caught too.
What the earlier events themselves recorded is checked against those rows by ``audit verify``.

The upgrade also gives the registry its id (``registry_meta.registry_id``), and sets the schema
version to 2, which an earlier release refuses to write (it would write facts without events).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from registry.domain.audit import GENESIS, Event, event_hash
from registry.domain.canonical import canonical_json
from registry.domain.clock import now_iso
from registry.domain.facts import FACT_TABLES, fact_hash, legacy_digest

if TYPE_CHECKING:
    from registry.storage.records import Records

__all__ = ["SYSTEM_ACTOR", "UPGRADE_ACTION", "ensure_registry_id", "registry_id_of", "upgrade"]

#: The actor of events the registry software itself records (upgrades).
SYSTEM_ACTOR = "adapters"
UPGRADE_ACTION = "registry upgrade"


def registry_id_of(records: Records) -> str | None:
    """This registry's id, without writing: the recorded one, else (a registry an earlier release made)
    the one its upgrade will record, derived from its first event; None for a registry with no events."""
    found = records.meta("registry_id")
    if found is not None:
        return found
    first = records.first_event()
    return first.hash[:32] if first is not None else None


def ensure_registry_id(records: Records) -> str:
    """This registry's id, recorded on first use (inside a write transaction)."""
    found = records.meta("registry_id")
    if found is None:
        found = registry_id_of(records) or uuid.uuid4().hex
        records.set_meta("registry_id", found)
    return found


def upgrade(records: Records, to_version: int) -> None:
    """Bring a registry of an earlier schema to ``to_version``, appending one ``registry upgrade`` event.

    From schema 1: the event records the legacy facts (see the module documentation). From any earlier
    schema: the tables a later schema added are created (empty), and the event names them.
    """
    found = int(records.meta("schema_version") or 1)
    if found >= to_version:
        return  # another process upgraded it while this one waited for the write lock
    added = records.create_missing_tables()
    payload: dict[str, object] = {"from_schema": found, "schema": to_version}
    if found < 2:
        legacy = {}
        for table in FACT_TABLES:
            rows = records.fact_rows(table)
            hashes = [fact_hash(table, r) for r in rows]
            legacy[table] = {
                "rows": len(rows),
                "max_id": max((int(r["id"]) for r in rows), default=0),
                "digest": legacy_digest(hashes),
            }
        payload["legacy_facts"] = legacy
    payload["registry_id"] = ensure_registry_id(records)
    if added:
        payload["tables_added"] = added
    last = records.last_event()
    seq = (last.seq + 1) if last else 1
    prev_hash = last.hash if last else GENESIS
    at = now_iso()
    body = canonical_json(payload).decode("utf-8")
    digest = event_hash(seq, at, SYSTEM_ACTOR, UPGRADE_ACTION, "registry", body, prev_hash)
    records.insert_event(Event(seq, at, SYSTEM_ACTOR, UPGRADE_ACTION, "registry", body, prev_hash, digest))
    records.set_meta("schema_version", str(to_version))
