"""Registered public keys: checking signatures against the key a user had, and writing key pairs.

A :class:`KeyRing` holds every key ever registered, by user and fingerprint, so an old signature
stays verifiable after its signer's key was rotated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from registry._io import atomic_write_bytes
from registry.domain import signing
from registry.domain.records import ApprovalRecord, ChannelMove
from registry.errors import InvalidInput
from registry.storage.records import StoredKey

__all__ = ["KeyRing", "write_keypair"]


@dataclass(frozen=True)
class KeyRing:
    """Every registered public key, by (user, fingerprint): what signatures are checked against."""

    keys: Mapping[tuple[str, str], bytes]

    @classmethod
    def of(cls, keys: Iterable[StoredKey]) -> KeyRing:
        return cls({(k.user, k.fingerprint): k.public_key for k in keys})

    def verify(self, actor: str, fingerprint: str | None, payload: str | None, signature: str | None) -> bool | None:
        """None when unsigned; else whether ``signature`` over ``payload`` is by ``actor``'s key ``fingerprint``."""
        if not signature:
            return None
        public = self.keys.get((actor, fingerprint or ""))
        return bool(public and payload and signing.verify(public, payload.encode("utf-8"), signature))

    def check(
        self,
        actor: str,
        fingerprint: str | None,
        payload: str | None,
        signature: str | None,
        expected: Mapping[str, Any],
    ) -> tuple[bool | None, str | None]:
        """(valid, why not): the signature verifies *and* its payload names what the record is about now
        (``expected``: the action, the version's ref and current digest, the channel), else it signed
        something else."""
        valid = self.verify(actor, fingerprint, payload, signature)
        if not valid:
            return valid, None if valid is None else "the signature does not verify against the signer's registered key"
        signed = json.loads(payload or "{}")
        different = [f"{k} {signed.get(k)!r} (the record: {v!r})" for k, v in expected.items() if signed.get(k) != v]
        if different:
            return False, "the signature is over something else: " + "; ".join(different)
        return True, None

    def approvals(self, approvals: Iterable[ApprovalRecord], ref: str, digest: str) -> tuple[ApprovalRecord, ...]:
        """The approvals of the version ``ref`` (now ``digest``) with their signatures checked."""
        out = []
        for a in approvals:
            expected = {"action": a.decision, "ref": ref, "digest": digest, "actor": a.actor, "policy": a.policy_digest}
            valid, note = self.check(a.actor, a.key_fingerprint, a.signed_payload, a.signature, expected)
            out.append(replace(a, signature_valid=valid, signature_note=note))
        return tuple(out)

    def moves(self, moves: Iterable[ChannelMove]) -> list[ChannelMove]:
        """Channel moves with their signatures checked against the move and its version's current digest."""
        out = []
        for m in moves:
            expected = {"action": m.action, "ref": f"{m.name}:{m.version}", "digest": m.digest, "channel": m.channel,
                        "actor": m.actor, "policy": m.policy_digest}  # fmt: skip
            valid, note = self.check(m.actor, m.key_fingerprint, m.signed_payload, m.signature, expected)
            out.append(replace(m, signature_valid=valid, signature_note=note))
        return out


def write_keypair(out: str | os.PathLike[str], name: str) -> dict[str, str]:
    """Write an Ed25519 key pair ``NAME.key`` (mode 0600) and ``NAME.pub`` into ``out``; never overwrites."""
    directory = Path(out).expanduser()
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    if private_path.exists():
        raise InvalidInput(
            f"{private_path} already exists; choose another --out or --name (keys are never overwritten)"
        )
    private, public = signing.generate_keypair()
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(private_path, private, private=True)
    atomic_write_bytes(public_path, public)
    return {
        "private_key": str(private_path),
        "public_key": str(public_path),
        "fingerprint": signing.fingerprint(public),
    }
