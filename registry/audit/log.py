"""The audit log: append in the same transaction as the change; checkpoints signed with the registry key.

Every state-changing action appends an event in the transaction that makes the change, recording
the facts it wrote and, when it was signed, its actor's signature (:meth:`AuditLog.append`).
Checkpoints are signed with the registry key, which lives outside the database and its home
(:mod:`registry.audit.keys`): whoever can rewrite the database cannot forge one. Verification is
:mod:`registry.audit.verify`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from registry._io import atomic_write_bytes
from registry.audit.keys import RegistryKeys
from registry.audit.results import Checkpoint
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.audit import GENESIS, Event, checkpoint_payload, event_hash
from registry.domain.canonical import canonical_json
from registry.domain.clock import Clock
from registry.domain.signing import SignedAction
from registry.errors import DestinationExists
from registry.storage.records import Records, RecordStore
from registry.storage.records.upgrade import ensure_registry_id, registry_id_of

__all__ = ["CHECKPOINT_ACTION", "AuditLog", "kept_copy", "read_checkpoint", "refuse_existing"]

CHECKPOINT_ACTION = "audit checkpoint"


class AuditLog:
    def __init__(self, store: RecordStore, keys: RegistryKeys, clock: Clock) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self._registry_id: str | None = None

    def append(
        self,
        records: Records,
        actor: Actor,
        action: str,
        subject: str,
        payload: Mapping[str, Any],
        signed: SignedAction | None = None,
    ) -> Event:
        """Append an event; call inside the write transaction that makes the change, after its facts.

        The event records every fact the transaction wrote (``facts``: table, id and hash of each
        row), the token the actor authenticated with (``token``, behind a server), and the actor's
        signature over the action when it was signed (``signed``).
        """
        last = records.last_event()
        seq = (last.seq + 1) if last else 1
        prev_hash = last.hash if last else GENESIS
        at = self.clock()
        content = dict(payload)
        facts = records.take_facts()
        if facts:
            content["facts"] = [f.to_dict() for f in facts]
        if signed is not None:
            content["signed"] = signed.to_dict()
        if actor.token_id is not None:
            content["token"] = actor.token_id
        body = canonical_json(content).decode("utf-8")
        digest = event_hash(seq, at, actor.name, action, subject, body, prev_hash)
        event = Event(seq, at, actor.name, action, subject, body, prev_hash, digest)
        records.insert_event(event)
        return event

    def events(self, subject: str | None = None, adapter: str | None = None) -> list[Event]:
        """Events in order: all, one ``subject`` (e.g. a version ``name:N``), or an ``adapter`` and its versions."""
        with self.store.read() as records:
            return records.events(subject=subject, adapter=adapter)

    def registry_id(self) -> str:
        """This registry's id (created, for a registry an earlier release made, on first use)."""
        if self._registry_id is None:
            with self.store.read() as records:
                found = registry_id_of(records)
            if found is None:  # a registry with no events yet: record a new id
                with self.store.write() as records:
                    found = ensure_registry_id(records)
            self._registry_id = found
        return self._registry_id

    def registry_public_key(self) -> bytes | None:
        return self.keys.public_key(self.registry_id())

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint(self, records: Records, actor: Actor, outs: Sequence[Path], force: bool = False) -> Checkpoint:
        """Sign the log's current size and head with the registry key; call inside a write transaction.

        The checkpoint is also recorded in the chain (an ``audit checkpoint`` event carrying it, signed
        by the registry key) and kept in the state directory; written to every path in ``outs`` (an
        existing file is refused unless ``force``) once the transaction commits (:meth:`write_files`).
        """
        refuse_existing(outs, force)
        registry_id = ensure_registry_id(records)
        private = self.keys.private_key_or_new(registry_id)
        key_path = str(self.keys.key_path(registry_id))
        last = records.last_event()
        size, head = (last.seq, last.hash) if last else (0, GENESIS)
        key = signing.fingerprint(signing.public_key_of(private, key_path))
        at = self.clock()
        payload = canonical_json(checkpoint_payload(size, head, at, key, registry_id))
        signature = signing.sign(private, payload, key_path)
        signed = SignedAction(payload.decode("utf-8"), signature, key)
        self.append(records, actor, CHECKPOINT_ACTION, "registry", {"size": size, "head": head}, signed=signed)
        kept = kept_copy(self.keys.checkpoint_dir(registry_id), at, size)
        return Checkpoint(size, head, at, key, signature, outs[0] if outs else kept, registry_id, (*outs, kept))

    @staticmethod
    def write_files(checkpoint: Checkpoint) -> None:
        """Write the checkpoint to each of its paths (existing ones were refused or allowed before)."""
        data = json.dumps(checkpoint.to_dict(), indent=2).encode("utf-8") + b"\n"
        for path in checkpoint.paths:
            atomic_write_bytes(Path(path).absolute(), data)


def refuse_existing(outs: Sequence[Path], force: bool) -> None:
    """Refuse to replace an existing checkpoint file unless ``force``."""
    for out in outs:
        if (out.exists() or out.is_symlink()) and not force:
            raise DestinationExists(
                str(out), f"checkpoint file {out} already exists; give another --out or pass --force"
            )


def kept_copy(directory: Path, at: str, size: int) -> Path:
    """Where the copy of a checkpoint kept in a state directory goes (``audit verify`` finds it there)."""
    stamp = at.replace(":", "").replace("-", "").replace(".", "")
    return directory / f"checkpoint-{stamp}-{size:08d}.json"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file's content, or :class:`InvalidInput` saying what it is not."""
    from registry.errors import InvalidInput

    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput(
            f"checkpoint {path} is not JSON; give a file written by `adapters audit checkpoint`"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"checkpoint {path} is not a checkpoint; give a file written by `adapters audit checkpoint`")
    return data


def payload_of(event: Event) -> Mapping[str, Any]:
    try:
        value = json.loads(event.payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
