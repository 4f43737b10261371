"""The registry's root of trust: ``adapters init`` and the trust file users keep outside the registry.

``init --admin NAME --public-key FILE`` records a ``registry init`` event naming the admin, their
key and the registry key; from it on, every signed governing action is checked against keys the
chain itself established (:mod:`registry.domain.authority`). On a new registry it is the first
event and creates the admin; on an existing one it adopts its current admin (who must hold the
admin role) and that key, and the signed part of the chain starts there.

The trust file it writes is small and meant to live where the database's administrators cannot
write (a user's own machine, a repository, a ticket)::

    {"schema": "adapters.trust/v1", "registry_id", "registry_key", "registry_public_key",
     "admin", "admin_key", "init": {"seq", "hash"}, "created_at"}

``audit verify --trust FILE`` and the audit report then check the registry against it: the same
registry id, the event at ``init.seq`` still has ``init.hash`` (the history up to the root was not
rewritten), checkpoints signed by the trusted registry key, and the same admin key in the root.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry._io import atomic_write_bytes
from registry.audit.log import AuditLog
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.audit import Event, Finding
from registry.domain.authority import INIT_ACTION
from registry.domain.clock import Clock
from registry.errors import InvalidInput
from registry.identity import Identity
from registry.storage.records import Records, RecordStore, RoleGrant
from registry.storage.records.upgrade import ensure_registry_id

__all__ = ["TRUST_SCHEMA", "TrustAnchor", "check_trust", "initialise"]

TRUST_SCHEMA = "adapters.trust/v1"


@dataclass(frozen=True)
class TrustAnchor:
    """What a user keeps to check a registry: its id, its registry key, and its root event."""

    registry_id: str
    registry_key: str
    registry_public_key: str
    admin: str
    admin_key: str
    init_seq: int
    init_hash: str
    created_at: str
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TRUST_SCHEMA,
            "registry_id": self.registry_id,
            "registry_key": self.registry_key,
            "registry_public_key": self.registry_public_key,
            "admin": self.admin,
            "admin_key": self.admin_key,
            "init": {"seq": self.init_seq, "hash": self.init_hash},
            "created_at": self.created_at,
        }

    def save(self, path: Path) -> TrustAnchor:
        atomic_write_bytes(Path(path).absolute(), json.dumps(self.to_dict(), indent=2).encode("utf-8") + b"\n")
        return TrustAnchor(**{**self.__dict__, "path": Path(path)})

    @classmethod
    def load(cls, path: Path) -> TrustAnchor:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise InvalidInput(f"cannot read trust file {path}: {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"trust file {path} is not JSON; give the file `adapters init` wrote") from None
        if not isinstance(data, Mapping) or data.get("schema") != TRUST_SCHEMA:
            raise InvalidInput(f"{path} is not a trust file ({TRUST_SCHEMA}); give the file `adapters init` wrote")
        try:
            signing.fingerprint(str(data["registry_public_key"]).encode(), f"the registry key in {path}")
            return cls(
                str(data["registry_id"]), str(data["registry_key"]), str(data["registry_public_key"]),
                str(data["admin"]), str(data["admin_key"]), int(data["init"]["seq"]), str(data["init"]["hash"]),
                str(data["created_at"]), Path(path),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f"trust file {path} lacks a field; give the file `adapters init` wrote") from None


def check_trust(
    trust: TrustAnchor, events: Sequence[Event], registry_id: str, local_key: bytes | None
) -> tuple[list[Finding], dict[str, Any]]:
    """Findings of the registry against a trust file, and what was checked."""
    findings = []
    where = f"trust file {trust.path}" if trust.path else "the trust file"
    if trust.registry_id != registry_id:
        findings.append(Finding("trust", None, f"{where} is for registry {trust.registry_id}, this is {registry_id}"))
    if signing.fingerprint(trust.registry_public_key.encode()) != trust.registry_key:
        findings.append(Finding("trust", None, f"{where} is inconsistent: its registry key and fingerprint differ"))
    if local_key is not None and signing.fingerprint(local_key) != trust.registry_key:
        findings.append(
            Finding(
                "trust",
                None,
                f"the registry key on this machine ({signing.fingerprint(local_key)[:19]}…) is not the trusted one "
                f"({trust.registry_key[:19]}…): checkpoints are checked against the trusted key",
            )
        )
    root = next((e for e in events if e.seq == trust.init_seq), None)
    if root is None or root.hash != trust.init_hash or root.action != INIT_ACTION:
        findings.append(
            Finding(
                "trust",
                trust.init_seq,
                f"event {trust.init_seq} is not the registry init event {where} names (hash {trust.init_hash[:16]}…): "
                "the history up to the root of trust was rewritten",
            )
        )
    else:
        payload = json.loads(root.payload)
        if payload.get("admin_key") != trust.admin_key or payload.get("registry_key") != trust.registry_key:
            findings.append(Finding("trust", root.seq, f"the registry init event names other keys than {where}"))
    return findings, {
        "path": str(trust.path) if trust.path else None,
        "registry_id": trust.registry_id,
        "ok": not findings,
    }


def initialise(store: RecordStore, log: AuditLog, clock: Clock, admin: str, public_key: bytes) -> TrustAnchor:
    """Record the registry's root of trust (see the module documentation) and return its trust anchor."""
    Actor(admin)
    fingerprint = signing.fingerprint(public_key, "the --public-key file")
    with store.write() as records:
        seq = records.meta("initialised_at_seq")
        if seq is not None:
            raise InvalidInput(
                f"this registry was initialised already (event {seq}); its trust file was written then. "
                "`adapters audit log` shows the registry init event"
            )
        registry_id = ensure_registry_id(records)
        registry_private = log.keys.private_key_or_new(registry_id)
        registry_public = signing.public_key_of(registry_private, str(log.keys.key_path(registry_id)))
        at = clock()
        adopted = _admin(records, admin, public_key, fingerprint, at)
        registry_key, registry_pem = signing.fingerprint(registry_public), registry_public.decode("ascii")
        payload = {
            "registry_id": registry_id, "admin": admin, "admin_key": fingerprint,
            "admin_public_key": public_key.decode("ascii"), "registry_key": registry_key,
            "registry_public_key": registry_pem, "adopted": adopted,
        }  # fmt: skip
        event = log.append(records, Actor(admin), INIT_ACTION, "registry", payload)
        records.set_meta("initialised_at_seq", str(event.seq))
    return TrustAnchor(registry_id, registry_key, registry_pem, admin, fingerprint, event.seq, event.hash, at)


def _admin(records: Records, admin: str, public_key: bytes, fingerprint: str, at: str) -> bool:
    """Create the admin on a new registry, or adopt an existing admin (registering the key if new).
    True when an existing registry was adopted."""
    if not records.user_count():
        records.insert_user(admin, at, admin)
        records.insert_grant(RoleGrant(admin, "admin", at, admin))
        records.insert_key(admin, public_key, fingerprint, at, admin)
        return False
    if "admin" not in Identity.roles(records, admin):
        admins = sorted({g.user for g in records.grants() if g.role == "admin"})
        raise InvalidInput(
            f"{admin} is not an admin of this registry (its admins: {', '.join(admins) or 'none'}); initialise it "
            "with one of them: `adapters init --admin NAME --public-key NAME.pub`"
        )
    current = Identity.key(records, admin)
    if current is None or current.fingerprint != fingerprint:
        others = [u for u in records.key_owners(fingerprint) if u != admin]
        if others:
            raise InvalidInput(f"that public key is registered to {others[0]}; the admin needs a key of their own")
        records.insert_key(admin, public_key, fingerprint, at, admin)
    return True
