"""Adapters and versions: resolving, allocating numbers, listing with filters."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from registry.domain.facts import FactRef, fact_hash
from registry.domain.state import INITIAL_STATE, state_after_latest
from registry.domain.versions import Manifest, VersionSummary
from registry.errors import IntegrityError
from registry.storage.records._base import (
    _VERSION_COLUMNS,
    Queries,
    StoredVersion,
    VersionQuery,
    _chunks,
    _like_pattern,
    _stored_version,
)
from registry.storage.tables import (
    ADAPTERS,
    EVALS,
    TRANSITIONS,
    VERSIONS,
)

__all__ = ["VersionQueries"]

_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq,
            "!=": operator.ne}  # fmt: skip


class VersionQueries(Queries):
    # -- adapters and versions -------------------------------------------------------------

    def adapter_id(self, name: str) -> int | None:
        value = self._session.execute(select(ADAPTERS.c.id).where(ADAPTERS.c.name == name)).scalar()
        return int(value) if value is not None else None

    def adapter_names(self) -> list[str]:
        return [r.name for r in self._all(select(ADAPTERS.c.name).order_by(ADAPTERS.c.name))]

    def create_adapter(self, name: str, at: str, by: str) -> int:
        """The adapter's id, creating it if needed (safe when several writers create it at once)."""
        row = self._db.insert_ignoring_conflict(
            self._session, ADAPTERS, {"name": name, "created_at": at, "created_by": by}, ["name"]
        )
        if row is not None:  # created now (not by a concurrent writer): a fact of this transaction
            self._facts.append(FactRef("adapters", int(row.id), fact_hash("adapters", row._asdict())))
        adapter_id = self.adapter_id(name)
        if adapter_id is None:  # the insert above either created it or found it
            raise IntegrityError(f"adapter {name!r} could not be created")
        return adapter_id

    def latest_number(self, adapter_id: int) -> int:
        value = self._session.execute(
            select(func.max(VERSIONS.c.number)).where(VERSIONS.c.adapter_id == adapter_id)
        ).scalar()
        return int(value or 0)

    def _versions(self) -> Select[Any]:
        return select(*_VERSION_COLUMNS).join(ADAPTERS, ADAPTERS.c.id == VERSIONS.c.adapter_id)

    def version(self, adapter_id: int, number: int) -> StoredVersion | None:
        row = self._session.execute(
            self._versions().where(VERSIONS.c.adapter_id == adapter_id, VERSIONS.c.number == number)
        ).first()
        return _stored_version(row) if row is not None else None

    def latest_version(self, adapter_id: int) -> StoredVersion | None:
        row = self._session.execute(
            self._versions().where(VERSIONS.c.adapter_id == adapter_id).order_by(VERSIONS.c.number.desc()).limit(1)
        ).first()
        return _stored_version(row) if row is not None else None

    def versions_with_digest(self, adapter_id: int, hex_prefix: str) -> list[StoredVersion]:
        rows = self._all(
            self._versions()
            .where(VERSIONS.c.adapter_id == adapter_id, VERSIONS.c.digest.like(f"sha256:{_like_pattern(hex_prefix)}%"))
            .order_by(VERSIONS.c.number)
        )
        return [_stored_version(r) for r in rows]

    def versions_by_id(self, version_ids: Sequence[int]) -> dict[int, StoredVersion]:
        out: dict[int, StoredVersion] = {}
        for chunk in _chunks(version_ids):
            for r in self._all(self._versions().where(VERSIONS.c.id.in_(chunk))):
                out[r.id] = _stored_version(r)
        return out

    def versions_of(self, names: Sequence[str] | None) -> list[StoredVersion]:
        """Every version of the named adapters (all adapters when None), by name and number."""
        query = self._versions().order_by(ADAPTERS.c.name, VERSIONS.c.number)
        if names is not None:
            query = query.where(ADAPTERS.c.name.in_(list(names)))
        return [_stored_version(r) for r in self._all(query)]

    def insert_version(self, adapter_id: int, manifest: Manifest) -> int:
        facts = manifest.peft
        row = self._insert_fact(
            VERSIONS,
            {
                "adapter_id": adapter_id,
                "number": manifest.version,
                "digest": manifest.digest,
                "manifest": manifest.canonical().decode("utf-8"),
                "created_at": manifest.created_at,
                "created_by": manifest.created_by,
                "peft_type": facts.type,
                "r": facts.r,
                "base_name": manifest.base.name,
                "base_fingerprint": manifest.base.fingerprint,
                "quantization": manifest.quantization.method,
                "size": manifest.size,
            },
        )
        return int(row.id)

    def list_versions(self, q: VersionQuery) -> list[tuple[int, VersionSummary]]:
        """(id, summary) of the versions matching ``q``, by name and number, each with its state (one query:
        the latest transition of each version is joined in, and folded by :func:`state_after_latest`)."""
        v, a, t = VERSIONS, ADAPTERS, TRANSITIONS
        latest = select(t.c.version_id, func.max(t.c.id).label("id")).group_by(t.c.version_id).subquery("latest")
        last = t.alias("last")
        query = (
            select(
                v.c.id, a.c.name, v.c.number, v.c.digest, last.c.to_state, v.c.created_at, v.c.created_by, v.c.peft_type,
                v.c.r, v.c.base_name, v.c.base_fingerprint, v.c.quantization, v.c.size,
            )
            .join(a, a.c.id == v.c.adapter_id)
            .outerjoin(latest, latest.c.version_id == v.c.id)
            .outerjoin(last, last.c.id == latest.c.id)
        )  # fmt: skip
        if q.pattern:
            if any(c in q.pattern for c in "*?"):
                query = query.where(a.c.name.like(_like_pattern(q.pattern), escape="\\"))
            else:
                query = query.where(
                    or_(a.c.name == q.pattern, a.c.name.like(_like_pattern(q.pattern) + "/%", escape="\\"))
                )
        if q.base:
            fp = q.base.lower().removeprefix("sha256:")
            query = query.where(
                or_(v.c.base_name == q.base, v.c.base_fingerprint.like(f"sha256:{_like_pattern(fp)}%", escape="\\"))
            )
        if q.peft_type:
            query = query.where(v.c.peft_type == q.peft_type.upper())
        if q.min_rank is not None:
            query = query.where(v.c.r >= q.min_rank)
        if q.max_rank is not None:
            query = query.where(v.c.r <= q.max_rank)
        if q.quantization:
            query = query.where(v.c.quantization == q.quantization.lower())
        if q.latest:
            other = VERSIONS.alias("other")
            newest = select(func.max(other.c.number)).where(other.c.adapter_id == v.c.adapter_id).scalar_subquery()
            query = query.where(v.c.number == newest)
        if q.state:
            if q.state == INITIAL_STATE:
                query = query.where(or_(last.c.to_state.is_(None), last.c.to_state == INITIAL_STATE))
            else:
                query = query.where(last.c.to_state == q.state)
        for i, (metric, dataset, op, value) in enumerate(q.where):
            e = EVALS.alias(f"e{i}")
            scope = EVALS.c.metric == metric
            if dataset is not None:
                scope = and_(scope, EVALS.c.dataset == dataset)
            newest_q = (
                select(EVALS.c.version_id, func.max(EVALS.c.id).label("id"))
                .where(scope)
                .group_by(EVALS.c.version_id)
                .subquery(f"newest{i}")
            )
            query = query.join(newest_q, newest_q.c.version_id == v.c.id).join(e, e.c.id == newest_q.c.id)
            query = query.where(_COMPARE[op](e.c.value, value))
        if q.version_ids is not None:
            if not q.version_ids:
                return []
            query = query.where(v.c.id.in_(sorted(q.version_ids)))
        rows = self._session.execute(query.order_by(a.c.name, v.c.number)).all()
        return [(r[0], VersionSummary(r[1], r[2], r[3], state_after_latest(r[4]), *r[5:])) for r in rows]
