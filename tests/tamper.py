"""Tampering with the database as someone with its admin rights would: append-only triggers off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from registry.storage.db import _append_only_triggers
from registry.storage.tables import APPEND_ONLY


@contextmanager
def tampering(reg: Any) -> Iterator[Any]:
    """A session on ``reg``'s database in which UPDATE and DELETE work on every table."""
    db = reg._db
    with db.write() as session:
        if db.dialect == "postgresql":
            for table in APPEND_ONLY:
                session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            for table in APPEND_ONLY:
                for op in ("update", "delete"):
                    session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{op}"))
        yield session
        if db.dialect == "postgresql":
            for table in APPEND_ONLY:
                session.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            for statement in _append_only_triggers("sqlite"):
                session.execute(text(statement))


def snapshot(reg: Any, name: str) -> Any:
    """A full copy of the registry's database, to restore later (an 'older backup')."""
    db = reg._db
    if db.dialect == "postgresql":
        with db.write() as session:
            for table in db_tables():
                session.execute(text(f"CREATE TABLE snap_{name}_{table} AS SELECT * FROM {table}"))
        return name
    import sqlite3

    path = db.url.database
    copy = f"{path}.{name}.bak"
    src, dst = sqlite3.connect(path), sqlite3.connect(copy)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return copy


def restore(reg: Any, snap: Any) -> None:
    """Put the database back as it was in ``snap``, as restoring an older backup would."""
    db = reg._db
    if db.dialect == "postgresql":
        with tampering(reg) as session:
            for table in reversed(db_tables()):
                session.execute(text(f"DELETE FROM {table}"))
            for table in db_tables():
                session.execute(text(f"INSERT INTO {table} SELECT * FROM snap_{snap}_{table}"))
        return
    import sqlite3

    db.engine.dispose()
    src, dst = sqlite3.connect(snap), sqlite3.connect(db.url.database)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def db_tables() -> list[str]:
    from registry.storage.tables import metadata

    return [t.name for t in metadata.sorted_tables]
