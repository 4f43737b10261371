"""The audit log: append in the same transaction as the change, verify, checkpoint.

Checkpoints are signed with a registry key that lives outside the database
(``ADAPTERS_REGISTRY_KEY``, default ``$ADAPTERS_HOME/keys/registry.key``, created on first
use): whoever can rewrite the database cannot forge a checkpoint without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from registry._io import atomic_write_bytes
from registry.audit.results import AuditVerification, Checkpoint
from registry.domain import signing
from registry.domain.audit import (
    CHECKPOINT_SCHEMA,
    GENESIS,
    Event,
    checkpoint_payload,
    event_hash,
    verify_chain,
    verify_checkpoint,
)
from registry.domain.canonical import canonical_json
from registry.domain.clock import now_iso
from registry.errors import InvalidInput, NotFound
from registry.storage.db import Database
from registry.storage.tables import AuditEventRow

__all__ = ["AuditLog"]

_EVENTS = AuditEventRow.__table__  # type: ignore[attr-defined]


def _event(row: Any) -> Event:
    return Event(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        payload=row.payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    def __init__(self, db: Database, registry_key: Path, checkpoint_dir: Path) -> None:
        self.db = db
        self.registry_key = registry_key
        #: every checkpoint is also kept here (outside the database): reports check the latest one
        self.checkpoint_dir = checkpoint_dir

    def append(self, session: Session, actor: str, action: str, subject: str, payload: Mapping[str, Any]) -> Event:
        """Append an event; call inside the write transaction that makes the change."""
        last = session.execute(select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)).first()
        seq = (last.seq + 1) if last else 1
        prev_hash = last.hash if last else GENESIS
        at = now_iso()
        body = canonical_json(dict(payload)).decode("utf-8")
        digest = event_hash(seq, at, actor, action, subject, body, prev_hash)
        session.execute(
            _EVENTS.insert().values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                payload=body,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        return Event(seq, at, actor, action, subject, body, prev_hash, digest)

    def events(self, subject: str | None = None) -> list[Event]:
        """Events in order; ``subject`` filters to one adapter (``name``) or version (``name:N``)."""
        query = select(_EVENTS).order_by(_EVENTS.c.seq)
        if subject is not None:
            if ":" in subject:
                query = query.where(_EVENTS.c.subject == subject)
            else:
                query = query.where((_EVENTS.c.subject == subject) | _EVENTS.c.subject.like(f"{subject}:%"))
        with self.db.read() as session:
            return [_event(r) for r in session.execute(query).all()]

    # -- registry key -----------------------------------------------------------------------

    def _private_key(self, create: bool) -> bytes | None:
        path = self.registry_key
        if path.is_file():
            return path.read_bytes()
        if not create:
            return None
        private, public = signing.generate_keypair()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, private)
        os.chmod(path, 0o600)
        atomic_write_bytes(path.with_suffix(".pub"), public)
        return private

    def _public_key(self) -> bytes | None:
        private = self._private_key(create=False)
        if private is not None:
            return signing.public_key_of(private, str(self.registry_key))
        pub = self.registry_key.with_suffix(".pub")
        return pub.read_bytes() if pub.is_file() else None

    # -- checkpoints and verification -------------------------------------------------------

    def checkpoint(self, out: Path) -> Checkpoint:
        """Sign the current size and head of the log and write it to ``out``."""
        private = self._private_key(create=True)
        assert private is not None
        events = self.events()
        head = events[-1].hash if events else GENESIS
        key = signing.fingerprint(signing.public_key_of(private, str(self.registry_key)))
        at = now_iso()
        payload = checkpoint_payload(len(events), head, at, key)
        signature = signing.sign(private, canonical_json(payload), str(self.registry_key))
        checkpoint = Checkpoint(size=len(events), head=head, at=at, key=key, signature=signature, path=out)
        data = json.dumps(checkpoint.to_dict(), indent=2).encode("utf-8") + b"\n"
        atomic_write_bytes(out, data)
        stamp = at.replace(":", "").replace("-", "").replace(".", "")
        atomic_write_bytes(self.checkpoint_dir / f"checkpoint-{stamp}-{len(events):08d}.json", data)
        return checkpoint

    def verify(self, checkpoints: Sequence[Path] = ()) -> AuditVerification:
        """Recompute the chain and check each checkpoint file against it."""
        events = self.events()
        findings = verify_chain(events)
        public = self._public_key()
        key = signing.fingerprint(public) if public else None
        results = []
        for path in checkpoints:
            data = _read_checkpoint(path)
            if public is None:
                raise NotFound(
                    f"cannot check checkpoint {path}: the registry key ({self.registry_key}, or its .pub) is not "
                    "on this machine; set ADAPTERS_REGISTRY_KEY to the key the checkpoints were signed with"
                )
            payload = {k: data.get(k) for k in ("schema", "size", "head", "at", "key")}
            valid = (
                data.get("schema") == CHECKPOINT_SCHEMA
                and isinstance(data.get("signature"), str)
                and signing.verify(public, canonical_json(payload), data["signature"])
            )
            found = verify_checkpoint(data, events, key, valid, str(path))
            findings.extend(found)
            results.append(
                {
                    "path": str(path),
                    "size": data.get("size"),
                    "at": data.get("at"),
                    "signature_valid": valid,
                    "ok": not found,
                }
            )
        head = events[-1].hash if events else GENESIS
        return AuditVerification(len(events), head, tuple(findings), tuple(results), key)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError:
        raise InvalidInput(
            f"checkpoint {path} is not JSON; give a file written by `adapters audit checkpoint`"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"checkpoint {path} is not a checkpoint; give a file written by `adapters audit checkpoint`")
    return data
