"""Facts appended to a version: evals, verification reports, probe references, tags and notes."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from registry.domain.annotations import NoteRecord, TagChange
from registry.domain.canonical import canonical_json
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord
from registry.storage.records._base import (
    Queries,
    StoredProbeReference,
    _eval,
)
from registry.storage.tables import (
    EVALS,
    NOTES,
    PROBE_REFERENCES,
    TAGS,
    VERIFICATIONS,
)

__all__ = ["FactQueries"]


class FactQueries(Queries):
    # -- evals, verifications, probe references -------------------------------------------------

    def insert_evals(self, version_id: int, evals: Sequence[EvalRecord]) -> None:
        if evals:
            self._insert_facts(
                EVALS,
                [
                    {
                        "version_id": version_id,
                        "metric": e.metric,
                        "value": e.value,
                        "dataset": e.dataset,
                        "recorded_at": e.recorded_at,
                        "recorded_by": e.recorded_by,
                        "source": e.source,
                    }
                    for e in evals
                ],
            )

    def evals(self, version_ids: Sequence[int]) -> dict[int, list[EvalRecord]]:
        out: dict[int, list[EvalRecord]] = defaultdict(list)
        for r in self._by_version(EVALS, version_ids, EVALS.c.id):
            out[r.version_id].append(_eval(r))
        return out

    def insert_verification(self, version_id: int, report: VerificationReport) -> int:
        row = self._insert_fact(
            VERIFICATIONS,
            {
                "version_id": version_id,
                "created_at": report.created_at,
                "created_by": report.created_by,
                "mode": report.mode,
                "passed": report.passed,
                "base_fingerprint": report.base_fingerprint,
                "report": canonical_json(report.to_dict()).decode("utf-8"),
            },
        )
        return int(row.id)

    def verifications(self, version_ids: Sequence[int]) -> dict[int, list[VerificationReport]]:
        out: dict[int, list[VerificationReport]] = defaultdict(list)
        for r in self._by_version(VERIFICATIONS, version_ids, VERIFICATIONS.c.id):
            out[r.version_id].append(VerificationReport.from_dict(json.loads(r.report), id=r.id))
        return out

    def probe_reference(self, version_id: int, base_fingerprint: str, settings: str) -> StoredProbeReference | None:
        """The first probe reference recorded for a version, base and load setting."""
        row = self._session.execute(
            select(PROBE_REFERENCES)
            .where(
                PROBE_REFERENCES.c.version_id == version_id,
                PROBE_REFERENCES.c.base_fingerprint == base_fingerprint,
                PROBE_REFERENCES.c.settings == settings,
            )
            .order_by(PROBE_REFERENCES.c.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        return StoredProbeReference(row.id, row.sample, row.digest, row.created_at, row.created_by)

    def insert_probe_reference(
        self,
        version_id: int,
        verification_id: int,
        base_fingerprint: str,
        settings: str,
        sample: Mapping[str, Any],
        digest: str,
        at: str,
        by: str,
    ) -> None:
        self._insert_fact(
            PROBE_REFERENCES,
            {
                "version_id": version_id,
                "verification_id": verification_id,
                "base_fingerprint": base_fingerprint,
                "settings": settings,
                "sample": canonical_json(dict(sample)).decode("utf-8"),
                "digest": digest,
                "created_at": at,
                "created_by": by,
            },
        )

    # -- tags and notes (schema 3) -------------------------------------------------------------------

    def insert_tag(self, version_id: int, tag: TagChange) -> None:
        self._insert_fact(
            TAGS, {"version_id": version_id, "key": tag.key, "value": tag.value, "set_at": tag.at, "set_by": tag.by}
        )

    def tag_changes(self, version_ids: Sequence[int] | None) -> dict[int, list[TagChange]]:
        """Every tag change of these versions (of all when None), oldest first (a value of None removed the key)."""
        out: dict[int, list[TagChange]] = defaultdict(list)
        if not self._exists(TAGS):
            return out
        rows = self._all(select(TAGS).order_by(TAGS.c.id)) if version_ids is None else None
        for r in rows if rows is not None else self._by_version(TAGS, version_ids or (), TAGS.c.id):
            out[r.version_id].append(TagChange(r.key, r.value, r.set_at, r.set_by))
        return out

    def tagged(self, key: str, value: str) -> set[int]:
        """Ids of versions whose tag ``key`` is ``value`` now (the latest change of that key set it)."""
        if not self._exists(TAGS):
            return set()
        rows = self._all(select(TAGS.c.version_id, TAGS.c.value).where(TAGS.c.key == key).order_by(TAGS.c.id))
        latest: dict[int, str | None] = {}
        for r in rows:
            latest[r.version_id] = r.value
        return {vid for vid, v in latest.items() if v == value}

    def insert_note(self, version_id: int, note: NoteRecord) -> None:
        self._insert_fact(
            NOTES, {"version_id": version_id, "text": note.text, "created_at": note.at, "created_by": note.by}
        )

    def notes(self, version_ids: Sequence[int]) -> dict[int, list[NoteRecord]]:
        out: dict[int, list[NoteRecord]] = defaultdict(list)
        if self._exists(NOTES):
            for r in self._by_version(NOTES, version_ids, NOTES.c.id):
                out[r.version_id].append(NoteRecord(r.text, r.created_at, r.created_by))
        return out
