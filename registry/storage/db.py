"""The SQL metadata store: engine set-up for SQLite and PostgreSQL, transactions, schema.

Two kinds of transaction:

* ``read()``: a plain transaction; on SQLite (WAL mode) it never blocks writers.
* ``write()``: one writer at a time, on both databases: SQLite starts it with
  ``BEGIN IMMEDIATE`` (writers queue up with a busy timeout instead of failing half-way),
  PostgreSQL takes a transaction-level advisory lock first. Every write appends to the
  audit chain, which must stay linear anyway, and version numbers, approval counts and
  channel targets are then computed from a state no other writer can change underneath.
  Writes are short (blobs are stored before the transaction), so this costs little.

Fact tables are append-only, and the database itself refuses ``UPDATE`` and ``DELETE``
on them (triggers), so a bug or a careless script cannot rewrite history.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, ProgrammingError
from sqlmodel import Session

from registry.errors import StorageError
from registry.storage.tables import APPEND_ONLY, META, metadata

if TYPE_CHECKING:
    from sqlalchemy import Table

__all__ = ["SCHEMA_VERSION", "Database"]

#: Bumped whenever the tables change in a way an older release could not read.
#: 2: facts bound to audit events; 3: role revocations, user removals, tags, notes; 4: API tokens;
#: 5: role grants scoped to a namespace
SCHEMA_VERSION = 5
_SQLITE_TIMEOUT_S = 60
_PG_SCHEMA_LOCK = 0x61646170  # "adap": advisory lock serialising schema creation
_PG_WRITE_LOCK = 0x61647772  # "adwr": advisory lock serialising writers


class Database:
    """A connection to the metadata database named by an SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StorageError(
                f"ADAPTERS_DB {url!r} is not a database URL; use e.g. sqlite:////path/registry.db or "
                "postgresql+psycopg://user@host:5432/dbname"
            ) from None
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        try:
            if self.dialect == "sqlite":
                self.engine = self._sqlite_engine(url)
            elif self.dialect == "postgresql":
                self.engine = create_engine(url, pool_pre_ping=True)
            else:
                raise StorageError(
                    f"database {self.redacted_url} is not supported; use SQLite (the default) or PostgreSQL "
                    "(postgresql+psycopg://...)"
                )
        except NoSuchModuleError as exc:
            raise StorageError(f"cannot use database URL {self.redacted_url}: {exc}") from None
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._schema_checked = False
        #: the schema version found (or created); set by :meth:`ensure_schema`
        self.schema_version = SCHEMA_VERSION

    @property
    def redacted_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def _sqlite_engine(self, url: str) -> Engine:
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the directory for the SQLite database {database}: {exc.strerror or exc}; "
                    "set ADAPTERS_HOME or ADAPTERS_DB to a writable place"
                ) from None
        engine = create_engine(url, connect_args={"timeout": _SQLITE_TIMEOUT_S, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the sqlite3 module: we emit BEGIN ourselves below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction."""
        self.ensure_schema()
        with self._translate_errors(), Session(self.engine) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """The one write transaction at a time, committed when the block ends without an exception."""
        self.ensure_schema()
        with self._translate_errors(), Session(self._write_engine) as session, session.begin():
            if self.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK})
            yield session

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StorageError(
                f"the metadata database {self.redacted_url} failed: {exc.orig}; check that it is reachable "
                "and writable (ADAPTERS_DB)"
            ) from None

    def insert_ignoring_conflict(
        self, session: Session, table: Table, values: Mapping[str, Any], conflict: Sequence[str]
    ) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING *``: safe when several processes create the same
        row; the row as stored when this call created it, None when it existed already."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement: Any = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table)
        statement = statement.values(**values).on_conflict_do_nothing(index_elements=list(conflict))
        return session.execute(statement.returning(*table.c)).first()

    # -- schema -------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the tables on first use (safely under concurrent first uses); refuse a newer schema.

        On SQLite, processes opening a new database at the same moment can find it locked while one
        of them creates the tables and switches it to WAL; they wait and try again.
        """
        if self._schema_checked:
            return
        deadline = time.monotonic() + _SQLITE_TIMEOUT_S
        while True:
            try:
                found = self._schema_version()
                if found is None:
                    self._create_schema()
                    found = SCHEMA_VERSION
                break
            except StorageError as exc:
                if self.dialect != "sqlite" or "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"the database {self.redacted_url} has schema version {found}, newer than this release "
                f"understands ({SCHEMA_VERSION}); upgrade adapter-registry (pip install -U adapter-registry)"
            )
        self.schema_version = found
        self._schema_checked = True

    def _schema_version(self) -> int | None:
        try:
            with self.engine.connect() as conn:
                value = conn.execute(select(META.c.value).where(META.c.key == "schema_version")).scalar()
        except (OperationalError, ProgrammingError) as exc:
            if _is_missing_table(exc):
                return None
            raise StorageError(
                f"cannot open the metadata database {self.redacted_url}: {exc.orig}; check ADAPTERS_DB "
                "(and that the server is running)"
            ) from None
        except DBAPIError as exc:
            raise StorageError(f"cannot open the metadata database {self.redacted_url}: {exc.orig}") from None
        return int(value) if value is not None else None

    def _create_schema(self) -> None:
        try:
            with self._write_engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK})
                table = META
                metadata.create_all(conn, tables=[table])
                if conn.execute(select(table.c.value).where(table.c.key == "schema_version")).scalar() is not None:
                    return  # another process created the schema while we waited for the lock
                metadata.create_all(conn)
                for statement in _append_only_triggers(self.dialect):
                    conn.exec_driver_sql(statement)
                conn.execute(table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                conn.execute(table.insert().values(key="registry_id", value=uuid.uuid4().hex))
        except DBAPIError as exc:
            raise StorageError(
                f"cannot create the registry tables in {self.redacted_url}: {exc.orig}; check that the "
                "database is writable"
            ) from None

    def create_missing_tables(self, conn: Any) -> list[str]:
        """Inside an upgrade's write transaction: create the tables this release has and the database
        lacks (with their append-only triggers); the names of those created."""
        from sqlalchemy import inspect

        existing = set(inspect(conn).get_table_names())
        missing = [t.name for t in metadata.sorted_tables if t.name not in existing]
        if missing:
            metadata.create_all(conn, checkfirst=True)
            for statement in _append_only_triggers(self.dialect):
                conn.exec_driver_sql(statement)
        return missing

    def dispose(self) -> None:
        self.engine.dispose()


def _append_only_triggers(dialect: str) -> list[str]:
    """DDL making the fact tables refuse UPDATE and DELETE."""
    if dialect == "postgresql":
        statements = [
            "CREATE OR REPLACE FUNCTION adapters_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: its records are never updated or deleted'; "
            "END; $$ LANGUAGE plpgsql"
        ]
        statements += [
            f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION adapters_append_only()"
            for t in APPEND_ONLY
        ]
        return statements
    return [
        f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN "
        f"SELECT RAISE(ABORT, '{t} is append-only: its records are never updated or deleted'); END"
        for t in APPEND_ONLY
        for op in ("UPDATE", "DELETE")
    ]


def _is_missing_table(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "no such table" in message or ("does not exist" in message and "relation" in message)
