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

from registry._io import atomic_write_bytes
from registry.audit.results import AuditVerification, Checkpoint
from registry.domain import signing
from registry.domain.actor import Actor
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
from registry.domain.clock import Clock
from registry.errors import InvalidInput, NotFound
from registry.storage.records import Records, RecordStore

__all__ = ["AuditLog"]


class AuditLog:
    def __init__(self, store: RecordStore, registry_key: Path, checkpoint_dir: Path, clock: Clock) -> None:
        self.store = store
        self.registry_key = registry_key
        #: every checkpoint is also kept here (outside the database): reports check the latest one
        self.checkpoint_dir = checkpoint_dir
        self.clock = clock

    def append(self, records: Records, actor: Actor, action: str, subject: str, payload: Mapping[str, Any]) -> Event:
        """Append an event; call inside the write transaction that makes the change."""
        last = records.last_event()
        seq = (last.seq + 1) if last else 1
        prev_hash = last.hash if last else GENESIS
        at = self.clock()
        body = canonical_json(dict(payload)).decode("utf-8")
        digest = event_hash(seq, at, actor.name, action, subject, body, prev_hash)
        event = Event(seq, at, actor.name, action, subject, body, prev_hash, digest)
        records.insert_event(event)
        return event

    def events(self, subject: str | None = None, adapter: str | None = None) -> list[Event]:
        """Events in order: all, one ``subject`` (e.g. a version ``name:N``), or an ``adapter`` and its versions."""
        with self.store.read() as records:
            return records.events(subject=subject, adapter=adapter)

    # -- registry key -----------------------------------------------------------------------

    def _private_key(self) -> bytes | None:
        path = self.registry_key
        return path.read_bytes() if path.is_file() else None

    def _private_key_or_new(self) -> bytes:
        """The registry key, created on first use."""
        path = self.registry_key
        existing = self._private_key()
        if existing is not None:
            return existing
        private, public = signing.generate_keypair()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, private)
        os.chmod(path, 0o600)
        atomic_write_bytes(path.with_suffix(".pub"), public)
        return private

    def _public_key(self) -> bytes | None:
        private = self._private_key()
        if private is not None:
            return signing.public_key_of(private, str(self.registry_key))
        pub = self.registry_key.with_suffix(".pub")
        return pub.read_bytes() if pub.is_file() else None

    # -- checkpoints and verification -------------------------------------------------------

    def checkpoint(self, out: Path) -> Checkpoint:
        """Sign the current size and head of the log and write it to ``out``."""
        private = self._private_key_or_new()
        events = self.events()
        head = events[-1].hash if events else GENESIS
        key = signing.fingerprint(signing.public_key_of(private, str(self.registry_key)))
        at = self.clock()
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
