"""``adapters audit verify``: everything the registry's history can prove, checked at once.

* the chain: every event's hash and link (:func:`registry.domain.audit.verify_chain`);
* every checkpoint known (given, kept in the state directory, or in the home of an earlier
  release), each signed by the registry key and matching the log: a history rewritten after a
  checkpoint is caught by that checkpoint, however many checkpoints were taken since;
* the trust file (``--trust``): the registry id, the registry key and the initialising event;
* every fact row against the event that recorded it, and each version against its push
  (:mod:`registry.domain.binding`);
* signatures and authority replayed along the chain (:mod:`registry.domain.authority`);
* with ``blobs``: every blob a version references exists with its size (``quick``), or re-hashes
  to its name (``full``): the check ``adapters fsck`` makes (:mod:`registry.maintenance.blobcheck`).

:func:`verify_history` is the one implementation: the embedded registry runs it over its own
database (:func:`verify_registry`), a client over the history a server exported
(:mod:`registry.audit.export`). What it trusts (:class:`Trusted`: the registry key, the checkpoint
files, the trust file) is always the verifier's own, never read from the registry being checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.audit.export import AuditExport, BlobReport
from registry.audit.keys import RegistryKeys
from registry.audit.log import read_checkpoint
from registry.audit.results import AuditVerification
from registry.audit.trust import TrustAnchor, check_trust
from registry.domain import signing
from registry.domain.audit import GENESIS, Event, Finding, signed_checkpoint_fields, verify_chain, verify_checkpoint
from registry.domain.authority import check_authority
from registry.domain.binding import check_facts
from registry.domain.canonical import canonical_json
from registry.domain.policy import Policy
from registry.errors import InvalidInput, PolicyError
from registry.maintenance.blobcheck import check_blobs
from registry.maintenance.references import blob_uses
from registry.storage.blobs.base import BlobStore
from registry.storage.records import Records

__all__ = ["BLOB_MODES", "Trusted", "check_blob_store", "known_checkpoints", "verify_history", "verify_registry"]

BLOB_MODES = ("quick", "full")


def known_checkpoints(given: Sequence[Path], directories: Sequence[Path]) -> list[Path]:
    """The given checkpoints, then every one kept in ``directories`` (oldest first), each once."""
    found: list[Path] = list(given)
    for directory in directories:
        if directory.is_dir():
            found += sorted(directory.glob("checkpoint-*.json"))
    seen: set[Path] = set()
    out = []
    for path in found:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            out.append(path)
    return out


def _check_checkpoints(
    paths: Sequence[Path], events: Sequence[Event], public: bytes | None, registry_id: str, explicit: int
) -> tuple[list[Finding], list[dict[str, Any]]]:
    findings: list[Finding] = []
    results = []
    key = signing.fingerprint(public) if public else None
    for i, path in enumerate(paths):
        data = read_checkpoint(path)
        if data.get("registry") not in (None, registry_id):
            if i < explicit:
                findings.append(
                    Finding(
                        "checkpoint-foreign", None, f"checkpoint {path} is of another registry ({data.get('registry')})"
                    )
                )
            continue
        fields = signed_checkpoint_fields(data)
        valid = bool(
            public is not None
            and fields is not None
            and isinstance(data.get("signature"), str)
            and signing.verify(public, canonical_json(fields), data["signature"])
        )
        if public is None:
            findings.append(
                Finding(
                    "checkpoint-key",
                    None,
                    f"cannot check checkpoint {path}: the registry key is not on this machine; set "
                    "ADAPTERS_REGISTRY_KEY to the key the checkpoints were signed with (or give --trust FILE)",
                )
            )
            continue
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
    return findings, results


def _policy_signatures(rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    out = {}
    for row in rows:
        try:
            out[str(row["digest"])] = Policy.parse(str(row["content"]), f"policy #{row['id']}").signatures_required
        except PolicyError:
            out[str(row["digest"])] = False
    return out


def check_blob_store(blobs: BlobStore, rows: Mapping[str, Sequence[Mapping[str, Any]]], mode: str) -> BlobReport:
    """Every blob the versions in ``rows`` reference, in ``blobs``: present with its size, or (``full``)
    re-hashed. Where the store is (the embedded registry, or the server) is where this runs."""
    if mode not in BLOB_MODES:
        raise InvalidInput(f"unknown blob check {mode!r}; use {', '.join(BLOB_MODES)}")
    uses, _ = blob_uses(rows["versions"], rows["adapters"])  # an unreadable manifest is reported as edited
    found = check_blobs(blobs, uses, full=mode == "full")
    findings = tuple(Finding(p.kind, None, p.message) for p in found.problems)
    return BlobReport(findings, {"mode": mode, "checked": found.files, "blobs": found.blobs, "bytes": found.bytes})


@dataclass(frozen=True)
class Trusted:
    """What the verifier holds itself and never takes from the registry it checks."""

    registry_public_key: bytes | None  # the registry key on this machine, or the one pinned at login
    checkpoints: Sequence[Path] = ()  # every checkpoint file known, those given explicitly first
    given: int = 0  # how many of ``checkpoints`` were given explicitly (a foreign one is then a finding)
    anchor: TrustAnchor | None = None  # the trust file, if any


def verify_history(history: AuditExport, trusted: Trusted, blobs: BlobReport | None = None) -> AuditVerification:
    """Every check (see the module documentation) of ``history`` against what the verifier trusts;
    ``blobs``: the blob store's check, made where the store is. ``ok`` is False with each problem named.

    The one verification: the embedded registry runs it over its own database, a client over the
    export a server sent (the trust material is the client's own either way)."""
    events = list(history.events)
    rows = history.rows
    registry_id = history.registry_id
    findings = verify_chain(events)
    trust = trusted.anchor
    public = trust.registry_public_key.encode() if trust is not None else trusted.registry_public_key
    found, results = _check_checkpoints(trusted.checkpoints, events, public, registry_id, trusted.given)
    findings += found
    trust_result = None
    if trust is not None:
        found, trust_result = check_trust(trust, events, registry_id, trusted.registry_public_key)
        findings += found
    facts = check_facts(events, rows)
    findings += facts.findings
    authority = check_authority(events, rows, _policy_signatures(rows["policies"]), public)
    findings += authority.findings
    if blobs is not None:
        findings += blobs.findings
    head = events[-1].hash if events else GENESIS
    return AuditVerification(
        events=len(events),
        head=head,
        findings=tuple(findings),
        checkpoints=tuple(results),
        registry_key=signing.fingerprint(public) if public else None,
        registry_id=registry_id,
        facts=facts.rows,
        signatures=authority.signatures,
        unsigned_events=authority.unsigned_before,
        initialised_at=authority.initialised_at,
        trust=trust_result,
        blobs=dict(blobs.summary) if blobs is not None else None,
    )


def verify_registry(
    records: Records,
    keys: RegistryKeys,
    registry_id: str,
    checkpoints: Sequence[Path] = (),
    trust: TrustAnchor | None = None,
    blobs: BlobStore | None = None,
    blob_mode: str | None = None,
) -> AuditVerification:
    """The embedded registry's verification: its database, against the registry key and the checkpoints
    on this machine (:func:`verify_history`)."""
    if blob_mode is not None and blob_mode not in BLOB_MODES:
        raise InvalidInput(f"unknown blob check {blob_mode!r}; use {', '.join(BLOB_MODES)}")
    history = AuditExport.of(records, registry_id)
    paths = known_checkpoints(checkpoints, keys.checkpoint_dirs(registry_id))
    trusted = Trusted(keys.public_key(registry_id), paths, len(checkpoints), trust)
    report = check_blob_store(blobs, history.rows, blob_mode) if blobs is not None and blob_mode is not None else None
    return verify_history(history, trusted, report)
