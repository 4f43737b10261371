"""Checking that every fact row is the one its audit event recorded, and every event's fact exists.

Three kinds of rows, by when they were written:

* **bound** rows (schema 2): an event records ``{table, id, hash}`` for each. A row whose hash
  differs was edited; an event's row that is gone was deleted; a row no event records was inserted
  outside the registry.
* **legacy** rows (written before the upgrade to schema 2): the ``registry upgrade`` event records,
  per table, the largest legacy id and a digest over those rows, so they cannot change afterwards;
  and what the earlier events recorded about them (a push's digest and file hashes, an approval's
  signature, a release's channel, ...) is compared with them (:mod:`registry.domain.legacy`).
* in a registry not upgraded yet, every row is legacy and only the second check applies.

Every version, whatever its kind, must also hash to its digest and equal what its push event
recorded: the digest, and each file's sha256.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.domain.audit import Event, Finding
from registry.domain.canonical import sha256_digest
from registry.domain.facts import BOUND_FROM_THE_START, FACT_TABLES, fact_hash, legacy_digest
from registry.domain.legacy import check_legacy_rows

__all__ = ["FactCheck", "check_facts", "check_versions", "payload_of"]

UPGRADE_ACTION = "registry upgrade"


def payload_of(event: Event) -> dict[str, Any]:
    return event.data


@dataclass
class FactCheck:
    """What :func:`check_facts` found, and how much it checked."""

    findings: list[Finding] = field(default_factory=list)
    rows: int = 0
    bound: int = 0
    legacy: int = 0

    def add(self, kind: str, seq: int | None, message: str) -> None:
        self.findings.append(Finding(kind, seq, message))


def _recorded(events: Sequence[Event], out: FactCheck) -> dict[tuple[str, int], tuple[str, Event]]:
    """Every (table, id) an event records, with the hash it recorded and the event."""
    recorded: dict[tuple[str, int], tuple[str, Event]] = {}
    for e in events:
        for f in payload_of(e).get("facts") or []:
            try:
                key, digest = (str(f["table"]), int(f["id"])), str(f["hash"])
            except (KeyError, TypeError, ValueError):
                out.add("fact-malformed", e.seq, f"{e.label} records a fact it does not describe: {f!r}")
                continue
            if key in recorded:
                first = recorded[key][1]
                out.add(
                    "fact-duplicated",
                    e.seq,
                    f"{e.label} records {key[0]} row {key[1]}, which {first.label} already recorded: "
                    "an event was replayed or forged",
                )
            recorded[key] = (digest, e)
    return recorded


def check_facts(events: Sequence[Event], rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> FactCheck:
    """Every fact row against the events (see the module documentation)."""
    out = FactCheck()
    recorded = _recorded(events, out)
    upgrade = next((e for e in events if e.action == UPGRADE_ACTION and "legacy_facts" in payload_of(e)), None)
    watermark: Mapping[str, Any] = payload_of(upgrade).get("legacy_facts") or {} if upgrade else {}
    legacy_rows: dict[str, list[Mapping[str, Any]]] = {t: [] for t in FACT_TABLES}
    for table in FACT_TABLES:
        limit = int((watermark.get(table) or {}).get("max_id", 0)) if upgrade else None
        if table in BOUND_FROM_THE_START:
            limit = 0  # a table added after facts were bound: no row of it is legacy
        legacy_hashes: list[str] = []
        for row in rows.get(table, ()):
            out.rows += 1
            rid = int(row["id"])
            digest = fact_hash(table, row)
            key = (table, rid)
            if key in recorded:
                out.bound += 1
                expected, event = recorded.pop(key)
                if expected != digest:
                    out.add(
                        "fact-edited",
                        event.seq,
                        f"{table} row {rid} was changed after {event.label} recorded it: its content no longer "
                        "hashes to the recorded hash",
                    )
            elif limit is None or rid <= limit:
                out.legacy += 1
                legacy_rows[table].append(row)
                legacy_hashes.append(digest)
            else:
                out.add(
                    "fact-unrecorded",
                    None,
                    f"{table} row {rid} was inserted outside the registry: no audit event records it",
                )
        if upgrade is not None and table not in BOUND_FROM_THE_START:
            _check_watermark(table, legacy_hashes, watermark.get(table) or {}, upgrade, out)
    for (table, rid), (_, event) in sorted(recorded.items(), key=lambda kv: kv[1][1].seq):
        out.add("fact-deleted", event.seq, f"{table} row {rid}, recorded by {event.label}, was deleted")
    legacy_events = [e for e in events if upgrade is None or e.seq < upgrade.seq]
    for kind, seq, message in check_legacy_rows(legacy_rows, legacy_events, rows):
        out.add(kind, seq, message)
    out.findings.extend(f for _, f in check_versions(events, rows))
    _check_signed_rows(rows, out)
    return out


def _check_signed_rows(rows: Mapping[str, Sequence[Mapping[str, Any]]], out: FactCheck) -> None:
    """Each signed approval and channel move signed what it records: its version's ref and current digest
    (and its channel). A version whose record was replaced keeps approvals that signed the old digest."""
    names = {int(a["id"]): str(a["name"]) for a in rows.get("adapters", ())}
    versions = {
        int(v["id"]): (f"{names.get(int(v['adapter_id']), '?')}:{v['number']}", v["digest"])
        for v in rows.get("versions", ())
    }
    for table, what in (("approvals", "decision"), ("channel_moves", "action")):
        for row in rows.get(table, ()):
            if not row.get("signed_payload"):
                continue
            try:
                signed = json.loads(str(row["signed_payload"]))
            except ValueError:
                signed = {}
            ref, digest = versions.get(int(row["version_id"]), ("?", None))
            expected = {"action": row[what], "ref": ref, "digest": digest, "actor": row["actor"]}
            if table == "channel_moves":
                expected["channel"] = row["channel"]
            different = [f"{k} {signed.get(k)!r}" for k, v in expected.items() if signed.get(k) != v]
            if different:
                out.add(
                    "signature-mismatch",
                    None,
                    f"{table} row {row['id']} ({row[what]} of {ref} by {row['actor']}) carries a signature over "
                    f"something else ({', '.join(different)}): it does not sign what the record says now",
                )


def _check_watermark(
    table: str, hashes: list[str], recorded: Mapping[str, Any], upgrade: Event, out: FactCheck
) -> None:
    count, digest = recorded.get("rows"), recorded.get("digest")
    if count == len(hashes) and digest == legacy_digest(hashes):
        return
    out.add(
        "fact-legacy-changed",
        upgrade.seq,
        f"the {table} rows written before {upgrade.label} changed since then ({count} rows recorded, "
        f"{len(hashes)} found, or their content differs): rows were edited, deleted or inserted",
    )


def check_versions(
    events: Sequence[Event], rows: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[tuple[str, Finding]]:
    """Each version hashes to its digest and equals what its push event recorded (its digest and each
    file's sha256): every problem as (the version's ref, the finding). ``events`` needs only the pushes."""
    names = {int(a["id"]): str(a["name"]) for a in rows.get("adapters", ())}
    pushes = {e.subject: e for e in events if e.action == "push"}
    out: list[tuple[str, Finding]] = []
    for v in rows.get("versions", ()):
        ref = f"{names.get(int(v['adapter_id']), '?')}:{v['number']}"
        if sha256_digest(str(v["manifest"]).encode("utf-8")) != v["digest"]:
            message = f"the manifest of {ref} no longer hashes to its digest {v['digest']}"
            out.append((ref, Finding("manifest-edited", None, message)))
        push = pushes.get(ref)
        if push is None:
            message = f"{ref} ({v['digest']}) has no push event: it was inserted outside the registry"
            out.append((ref, Finding("version-unrecorded", None, message)))
            continue
        recorded = payload_of(push)
        if recorded.get("digest") != v["digest"]:
            message = (
                f"{ref} has digest {v['digest']}, but {push.label} recorded {recorded.get('digest')}: the version's "
                "record was replaced"
            )
            out.append((ref, Finding("version-changed", push.seq, message)))
        found = _check_files(ref, v, recorded, push)
        if found is not None:
            out.append((ref, found))
    return out


def _check_files(ref: str, version: Mapping[str, Any], recorded: Mapping[str, Any], push: Event) -> Finding | None:
    files = recorded.get("files")
    if not isinstance(files, Mapping):
        return None
    try:
        manifest = json.loads(str(version["manifest"]))
        stored = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
    except (ValueError, KeyError, TypeError, AttributeError):
        return Finding("manifest-edited", push.seq, f"the manifest of {ref} is not a manifest any more")
    if stored == dict(files):
        return None
    changed = sorted(p for p in {*stored, *files} if stored.get(p) != files.get(p))
    return Finding(
        "version-files-changed",
        push.seq,
        f"{ref}'s files differ from those {push.label} recorded ({', '.join(changed)}): the version now "
        "points at other bytes",
    )
