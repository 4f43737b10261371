"""The audit chain: hashing events, verifying the chain and signed checkpoints.

Every event carries ``prev_hash`` (the previous event's hash; 64 zeros for the first)
and ``hash = sha256(canonical JSON [seq, at, actor, action, subject, payload, prev_hash])``.
Verification recomputes every hash and link and names the first bad event:

* ``edited``: an event's content no longer hashes to its hash;
* ``deleted``: sequence numbers jump (an event is missing);
* ``reordered``: an event's hash is the hash of its content *at another position*;
* ``broken-link``: an event's ``prev_hash`` is not its predecessor's hash.

A checkpoint is a statement, signed with a registry key kept outside the database,
that the log had ``size`` events ending in ``head``. Against the current log it catches:

* ``truncated``: the log has fewer events than the checkpoint (tail cut off, or the
  database restored from an older copy);
* ``rewritten``: the event at ``size`` no longer has the hash ``head`` (history replaced,
  even with every hash recomputed);
* ``bad-signature``: the checkpoint was not signed by the registry key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from registry.domain.canonical import canonical_json

__all__ = [
    "CHECKPOINT_SCHEMA",
    "CHECKPOINT_SCHEMA_V1",
    "GENESIS",
    "Event",
    "Finding",
    "checkpoint_payload",
    "event_hash",
    "signed_checkpoint_fields",
    "verify_chain",
    "verify_checkpoint",
]

GENESIS = "0" * 64
#: Checkpoints name their registry (v2); checkpoints of an earlier release (v1) do not.
CHECKPOINT_SCHEMA = "adapters.audit-checkpoint/v2"
CHECKPOINT_SCHEMA_V1 = "adapters.audit-checkpoint/v1"
_REORDER_WINDOW = 8


def event_hash(seq: int, at: str, actor: str, action: str, subject: str, payload: str, prev_hash: str) -> str:
    return hashlib.sha256(canonical_json([seq, at, actor, action, subject, payload, prev_hash])).hexdigest()


@dataclass(frozen=True)
class Event:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    payload: str  # canonical JSON
    prev_hash: str
    hash: str

    def recomputed(self, seq: int | None = None) -> str:
        return event_hash(
            self.seq if seq is None else seq,
            self.at,
            self.actor,
            self.action,
            self.subject,
            self.payload,
            self.prev_hash,
        )

    @property
    def data(self) -> dict[str, Any]:
        """The payload, parsed (once per payload text: verification reads it from several checks)."""
        return _parsed_payload(self.payload)

    @property
    def label(self) -> str:
        return f"event {self.seq} ({self.action} {self.subject} by {self.actor} at {self.at})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": json.loads(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """The event of :meth:`to_dict` (a server's answer to ``audit log``), its payload canonical JSON again."""
        payload = canonical_json(d["payload"]).decode("utf-8")
        return cls(d["seq"], d["at"], d["actor"], d["action"], d["subject"], payload, d["prev_hash"], d["hash"])


@lru_cache(maxsize=65536)
def _parsed_payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the log, pinned to an event (or to a checkpoint)."""

    kind: str
    seq: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        seq = d.get("seq")
        return cls(str(d["kind"]), None if seq is None else int(seq), str(d["message"]))


def verify_chain(events: Sequence[Event]) -> list[Finding]:
    """Every problem found walking the chain in seq order (the first is the one to report)."""
    findings: list[Finding] = []
    expected_seq = 1
    prev_hash = GENESIS
    by_position = {i: e for i, e in enumerate(events)}
    for i, event in enumerate(events):
        if event.seq != expected_seq:
            if event.seq > expected_seq:
                missing = f"{expected_seq}" if event.seq == expected_seq + 1 else f"{expected_seq}-{event.seq - 1}"
                findings.append(
                    Finding(
                        "deleted",
                        expected_seq,
                        f"event {missing} is missing: the sequence jumps from {expected_seq - 1} to {event.seq}; an event was deleted",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "reordered",
                        event.seq,
                        f"{event.label} appears after event {expected_seq - 1}: events were reordered",
                    )
                )
        if event.recomputed() != event.hash:
            original = _original_position(event, by_position, i)
            if original is not None:
                findings.append(
                    Finding(
                        "reordered",
                        event.seq,
                        f"{event.label} was recorded as event {original}: events were swapped or reordered",
                    )
                )
            else:
                findings.append(
                    Finding("edited", event.seq, f"{event.label} was edited: its content no longer matches its hash")
                )
        elif event.prev_hash != prev_hash:
            findings.append(
                Finding(
                    "broken-link",
                    event.seq,
                    f"{event.label} does not follow the event before it (its prev_hash is not that event's hash): "
                    "events were removed, inserted or reordered",
                )
            )
        prev_hash = event.hash
        expected_seq = event.seq + 1
    return findings


def _original_position(event: Event, by_position: Mapping[int, Event], i: int) -> int | None:
    """The seq at which this content was hashed, if it is near its current place."""
    for delta in range(1, _REORDER_WINDOW + 1):
        for seq in (event.seq - delta, event.seq + delta):
            if seq >= 1 and event.recomputed(seq) == event.hash:
                return seq
    return None


def checkpoint_payload(
    size: int, head: str, at: str, key_fingerprint: str, registry: str | None = None
) -> dict[str, Any]:
    """What a checkpoint signs (v2, naming the registry; v1 when ``registry`` is None)."""
    if registry is None:
        return {"schema": CHECKPOINT_SCHEMA_V1, "size": size, "head": head, "at": at, "key": key_fingerprint}
    return {
        "schema": CHECKPOINT_SCHEMA,
        "registry": registry,
        "size": size,
        "head": head,
        "at": at,
        "key": key_fingerprint,
    }


def signed_checkpoint_fields(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields a checkpoint file's signature covers, by its schema; None for an unknown schema."""
    if data.get("schema") == CHECKPOINT_SCHEMA:
        return {k: data.get(k) for k in ("schema", "registry", "size", "head", "at", "key")}
    if data.get("schema") == CHECKPOINT_SCHEMA_V1:
        return {k: data.get(k) for k in ("schema", "size", "head", "at", "key")}
    return None


def verify_checkpoint(
    checkpoint: Mapping[str, Any],
    events: Sequence[Event],
    registry_key_fingerprint: str | None,
    signature_valid: bool,
    name: str,
) -> list[Finding]:
    """Findings of one checkpoint against the current events (``name`` identifies the checkpoint)."""
    size, head, at = checkpoint.get("size"), checkpoint.get("head"), checkpoint.get("at")
    if not signature_valid:
        whose = (
            "by the registry key"
            if registry_key_fingerprint is None or checkpoint.get("key") == registry_key_fingerprint
            else f"by the registry key {registry_key_fingerprint} (it names key {checkpoint.get('key')})"
        )
        return [
            Finding(
                "bad-signature",
                None,
                f"checkpoint {name} is not signed {whose}: it cannot be trusted; it was forged or altered",
            )
        ]
    if not isinstance(size, int) or not isinstance(head, str):
        return [Finding("bad-signature", None, f"checkpoint {name} is malformed")]
    if size == 0:
        return []
    by_seq = {e.seq: e for e in events}
    last = max(by_seq, default=0)
    if size > last:
        return [
            Finding(
                "truncated",
                last + 1,
                f"checkpoint {name} (signed {at}) records {size} events but the log has {last}: events {last + 1}-{size} "
                "were cut off, or the database was restored from an older copy",
            )
        ]
    event = by_seq.get(size)
    if event is None or event.hash != head:
        return [
            Finding(
                "rewritten",
                size,
                f"checkpoint {name} (signed {at}) says event {size} has hash {head[:16]}…, the log's has "
                f"{event.hash[:16] + '…' if event else 'no such event'}: history up to event {size} was rewritten",
            )
        ]
    return []
