"""An attacker with write access to the registry's database, working as one would: a raw client on the
file (Python's sqlite3) or the server (psycopg, what psql speaks), the append-only triggers disabled,
and the registry's published hashing rules to recompute whatever hash they like. Nothing here goes
through the registry's own code paths; only its pure hash functions are reused (an attacker reads them
in the source)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from registry.domain.audit import event_hash
from registry.domain.canonical import canonical_json
from registry.domain.facts import fact_hash

APPEND_ONLY = (
    "adapters", "versions", "evals", "verifications", "probe_references", "users", "role_grants", "user_keys",
    "policies", "transitions", "approvals", "channel_moves", "role_revocations", "user_removals", "tags", "notes",
    "role_grant_scopes", "audit_events",
)  # fmt: skip


class Attacker:
    def __init__(self, reg: Any) -> None:
        url = reg.settings.db_url
        if url.startswith("sqlite"):
            self.dialect = "sqlite"
            self.path = url.removeprefix("sqlite:///")
        else:
            self.dialect = "postgresql"
            parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
            options = parse_qs(parts.query).get("options", [""])[0]
            self.dsn = f"postgresql://{parts.netloc}{parts.path}"
            self.options = options
        reg._db.dispose()  # the registry's pooled connections must not hold locks

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection with every append-only trigger disabled, committed at the end."""
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self.path)
            conn.row_factory = sqlite3.Row
            for table in APPEND_ONLY:
                for op in ("update", "delete"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
            try:
                yield conn
                conn.commit()
            finally:
                conn.close()
            return
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.dsn, options=self.options, row_factory=dict_row) as conn:
            for table in APPEND_ONLY:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield conn

    def _sql(self, statement: str) -> str:
        return statement if self.dialect == "sqlite" else statement.replace("?", "%s")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        with self.connect() as conn:
            conn.execute(self._sql(statement), tuple(params))

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.connect() as conn:
            return [dict(r) for r in conn.execute(self._sql(query), tuple(params)).fetchall()]

    def insert(self, table: str, values: dict[str, Any]) -> dict[str, Any]:
        """Insert a row and return it as stored (with its id)."""
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.connect() as conn:
            if self.dialect == "sqlite":
                cur = conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(values.values()))
                new_id = cur.lastrowid
            else:
                cur = conn.execute(
                    self._sql(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING id"), tuple(values.values())
                )
                new_id = cur.fetchone()["id"]
            row = conn.execute(self._sql(f"SELECT * FROM {table} WHERE id = ?"), (new_id,)).fetchone()
            return dict(row)

    def append_event(
        self,
        actor: str,
        action: str,
        subject: str,
        payload: dict[str, Any],
        facts: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> dict[str, Any]:
        """Append an event after the last one, with correct hashes and the fact hashes of ``facts``
        (table, row) recomputed as the registry would: a perfect forgery of everything but signatures."""
        with self.connect() as conn:
            last = conn.execute("SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev, at = (
                (last["seq"] + 1, last["hash"], last["at"]) if last else (1, "0" * 64, "2026-01-01T00:00:00.000000Z")
            )
            body = dict(payload)
            if facts:
                body["facts"] = [{"table": t, "id": r["id"], "hash": fact_hash(t, _plain(r))} for t, r in facts]
            text = canonical_json(body).decode("utf-8")
            digest = event_hash(seq, at, actor, action, subject, text, prev)
            conn.execute(
                self._sql("INSERT INTO audit_events (seq, at, actor, action, subject, payload, prev_hash, hash) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                (seq, at, actor, action, subject, text, prev, digest),
            )  # fmt: skip
        return {"seq": seq, "hash": digest}

    def rechain(self) -> None:
        """Recompute every event's hash and link in order, as after editing history."""
        with self.connect() as conn:
            events = [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq").fetchall()]
            prev = "0" * 64
            for e in events:
                digest = event_hash(e["seq"], e["at"], e["actor"], e["action"], e["subject"], e["payload"], prev)
                conn.execute(
                    self._sql("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?"), (prev, digest, e["seq"])
                )
                prev = digest


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the registry hashes it (SQLite gives booleans as integers; the registry reads them as bools)."""
    out = dict(row)
    if "passed" in out and isinstance(out["passed"], int):
        out["passed"] = bool(out["passed"])
    return out


def payload(event_row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(event_row["payload"])
