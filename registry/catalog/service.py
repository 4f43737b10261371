"""The catalog: push, pull, list, show and resolve versions.

Push stores every file as a blob first (durable, deduplicated), then records the
version in one short write transaction, so a version row never exists without its
bytes. Pull re-hashes every byte it hands out and publishes the output directory
with a rename, so it appears complete or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session

from registry._io import Progress, atomic_write_bytes, fsync_dir, publish_dir, temporary_sibling_dir
from registry.audit.log import AuditLog
from registry.basemodel import ResolvedBase, resolve_base
from registry.catalog.results import ListFilter, PullResult, PushResult
from registry.datasets import resolve_dataset
from registry.domain.adapterdir import PROVENANCE_FILE, AdapterSource, read_adapter_dir
from registry.domain.canonical import sha256_digest
from registry.domain.clock import now_iso
from registry.domain.lineage import Evaluation, PushMetadata, Quantization
from registry.domain.refs import Ref, validate_name
from registry.domain.versions import (
    BaseModel,
    EvalRecord,
    FileEntry,
    Manifest,
    ParentRef,
    VersionInfo,
    VersionSummary,
)
from registry.errors import (
    AmbiguousReference,
    DestinationExists,
    IntegrityError,
    InvalidAdapter,
    InvalidMetadata,
    NotFound,
    PermissionDenied,
)
from registry.filehashes import FileHashCache
from registry.identity import Identity
from registry.storage import records
from registry.storage.blobs.local import BlobStore
from registry.storage.db import Database
from registry.storage.tables import AdapterRow, EvalRow, VersionRow

__all__ = ["Catalog"]

_ADAPTERS = AdapterRow.__table__  # type: ignore[attr-defined]
_VERSIONS = VersionRow.__table__  # type: ignore[attr-defined]
_EVALS = EvalRow.__table__  # type: ignore[attr-defined]


def _like_pattern(glob: str) -> str:
    """A shell glob (``*``, ``?``) as an SQL LIKE pattern with ``\\`` as escape."""
    out = []
    for ch in glob:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class Catalog:
    """Versions in, versions out."""

    def __init__(
        self, db: Database, store: BlobStore, hashes: FileHashCache, identity: Identity, audit: AuditLog
    ) -> None:
        self.db = db
        self.store = store
        self.hashes = hashes
        self.identity = identity
        self.audit = audit
        self.user = identity.user

    # -- resolving ------------------------------------------------------------------------

    def adapter_id(self, session: Session, name: str) -> int:
        adapter_id = session.execute(select(_ADAPTERS.c.id).where(_ADAPTERS.c.name == name)).scalar()
        if adapter_id is None:
            raise NotFound(
                f"adapter {name!r} does not exist; `adapters ls` lists the adapters in this registry", name=name
            )
        return int(adapter_id)

    def resolve_row(self, session: Session, ref: Ref) -> Any:
        """The version row a reference points at (a Row with the versions table's columns)."""
        adapter_id = self.adapter_id(session, ref.name)
        query = select(_VERSIONS).where(_VERSIONS.c.adapter_id == adapter_id)
        if ref.version is not None:
            row = session.execute(query.where(_VERSIONS.c.number == ref.version)).first()
            if row is None:
                latest = self._latest_number(session, adapter_id)
                raise NotFound(
                    f"adapter {ref.name!r} has no version {ref.version}; versions are 1-{latest} "
                    f"(adapters ls {ref.name})",
                    name=ref.name,
                    version=ref.version,
                )
            return row
        if ref.digest is not None:
            rows = session.execute(
                query.where(_VERSIONS.c.digest.like(f"sha256:{ref.digest}%")).order_by(_VERSIONS.c.number)
            ).all()
            if not rows:
                raise NotFound(
                    f"adapter {ref.name!r} has no version with digest sha256:{ref.digest}...; "
                    f"`adapters ls {ref.name}` shows the digests",
                    name=ref.name,
                )
            if len(rows) > 1:
                raise AmbiguousReference(str(ref), [f"{ref.name}:{r.number} {r.digest}" for r in rows])
            return rows[0]
        if ref.channel is not None:
            return self.resolve_channel(session, ref, adapter_id)
        row = session.execute(query.order_by(_VERSIONS.c.number.desc()).limit(1)).first()
        if row is None:
            raise NotFound(f"adapter {ref.name!r} has no versions yet; push one with `adapters push`", name=ref.name)
        return row

    def resolve_channel(self, session: Session, ref: Ref, adapter_id: int) -> Any:
        assert ref.channel is not None
        version_id = records.channel_target(session, adapter_id, ref.channel)
        if version_id is None:
            channels = records.channel_names(session, adapter_id)
            known = f"its channels are {', '.join(channels)}" if channels else "it has not been released to any channel"
            raise NotFound(
                f"adapter {ref.name!r} has no channel {ref.channel!r} ({known}); release a version with "
                f"`adapters release {ref.name}:N --channel {ref.channel}`",
                name=ref.name,
            )
        return session.execute(select(_VERSIONS).where(_VERSIONS.c.id == version_id)).one()

    def _latest_number(self, session: Session, adapter_id: int) -> int:
        value = session.execute(
            select(func.max(_VERSIONS.c.number)).where(_VERSIONS.c.adapter_id == adapter_id)
        ).scalar()
        return int(value or 0)

    @staticmethod
    def manifest_of(row: Any) -> Manifest:
        """The row's manifest, after checking it still hashes to the row's digest."""
        if sha256_digest(row.manifest.encode("utf-8")) != row.digest:
            raise IntegrityError(
                f"the stored record of version {row.digest} no longer matches its digest: the metadata "
                "database was altered. Restore it from a backup and run `adapters audit verify`",
            )
        return Manifest.from_json(row.manifest)

    def states(self, session: Session, version_ids: Sequence[int]) -> dict[int, str]:
        """The lifecycle state of each version, derived from its transitions."""
        return records.version_states(session, version_ids)

    # -- push -----------------------------------------------------------------------------

    def push(
        self,
        source: str | os.PathLike[str],
        name: str,
        meta: PushMetadata,
        progress: Progress | None = None,
    ) -> PushResult:
        validate_name(name)
        adapter = read_adapter_dir(source)
        warnings = list(adapter.warnings)
        resolved = self._resolve_base(meta, adapter, progress)
        warnings.extend(resolved.warnings)
        datasets = tuple(resolve_dataset(d, self.hashes, progress) for d in meta.datasets)
        parent = self._parent(meta.parent) if meta.parent else None

        files, new_bytes = self._store_files(adapter, progress)
        with self.db.write() as session:
            self.identity.require(session, "push")
            self.db.insert_ignoring_conflict(
                session, _ADAPTERS, {"name": name, "created_at": now_iso(), "created_by": self.user}, ["name"]
            )
            adapter_id = self.adapter_id(session, name)
            number = self._latest_number(session, adapter_id) + 1
            manifest = Manifest(
                name=name,
                version=number,
                created_at=now_iso(),
                created_by=self.user,
                description=meta.description,
                files=files,
                peft=adapter.facts,
                base=resolved.base,
                quantization=meta.quantization or Quantization(),
                datasets=datasets,
                training=meta.training,
                parent=parent,
            )
            version_id = self._insert_version(session, adapter_id, manifest)
            self._insert_evals(session, version_id, meta.evals, source="push", at=manifest.created_at)
            self.audit.append(
                session,
                self.user,
                "push",
                f"{name}:{number}",
                {
                    "digest": manifest.digest,
                    "files": {f.path: f.sha256 for f in files},
                    "base": manifest.base.fingerprint or manifest.base.name,
                    "evals": [e.to_dict() for e in meta.evals],
                },
            )
        return PushResult(
            name=name,
            version=number,
            digest=manifest.digest,
            size=manifest.size,
            files=len(files),
            new_bytes=new_bytes,
            base=resolved.base,
            warnings=tuple(warnings),
        )

    def _resolve_base(self, meta: PushMetadata, adapter: AdapterSource, progress: Progress | None) -> ResolvedBase:
        if meta.base:
            return resolve_base(meta.base, meta.base_revision, self.hashes, progress)
        recorded = adapter.facts.base_model_name_or_path
        if not recorded:
            return ResolvedBase(
                base=BaseModel(revision=meta.base_revision),
                directory=None,
                warnings=("no base model recorded: pass --base (a model directory or a Hugging Face id)",),
            )
        try:
            resolved = resolve_base(recorded, meta.base_revision, self.hashes, progress)
        except NotFound:
            resolved = ResolvedBase(
                base=BaseModel(name=recorded, revision=meta.base_revision, source="unresolved"), directory=None
            )
        note = f"no --base given; using base_model_name_or_path {recorded!r} from the adapter config"
        if resolved.base.fingerprint is None:
            note += " (not found on this machine, so no content fingerprint); pass --base to fingerprint it"
        return ResolvedBase(resolved.base, resolved.directory, resolved.files, (note,))

    def _parent(self, text: str) -> ParentRef:
        with self.db.read() as session:
            row = self.resolve_row(session, Ref.parse(text))
            name = session.execute(select(_ADAPTERS.c.name).where(_ADAPTERS.c.id == row.adapter_id)).scalar_one()
        return ParentRef(name=name, version=row.number, digest=row.digest)

    def _store_files(self, adapter: AdapterSource, progress: Progress | None) -> tuple[tuple[FileEntry, ...], int]:
        entries = []
        new_bytes = 0
        for f in adapter.files:
            blob = self.store.put(f.abspath, progress, f.path)
            st = os.stat(f.abspath)
            if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns) or blob.size != f.size:
                raise InvalidAdapter(
                    f"{adapter.root / f.path} changed while it was being pushed; wait until the training job has "
                    "finished writing the adapter and push again",
                    str(adapter.root / f.path),
                )
            new_bytes += blob.size if blob.new else 0
            entries.append(FileEntry(path=f.path, sha256=blob.sha256, size=blob.size))
        return tuple(entries), new_bytes

    def _insert_version(self, session: Session, adapter_id: int, manifest: Manifest) -> int:
        facts = manifest.peft
        statement = (
            _VERSIONS.insert()
            .values(
                adapter_id=adapter_id,
                number=manifest.version,
                digest=manifest.digest,
                manifest=manifest.canonical().decode("utf-8"),
                created_at=manifest.created_at,
                created_by=manifest.created_by,
                peft_type=facts.type,
                r=facts.r,
                base_name=manifest.base.name,
                base_fingerprint=manifest.base.fingerprint,
                quantization=manifest.quantization.method,
                size=manifest.size,
            )
            .returning(_VERSIONS.c.id)
        )
        return int(session.execute(statement).scalar_one())

    def _insert_evals(
        self, session: Session, version_id: int, evals: Sequence[Evaluation], source: str, at: str
    ) -> None:
        if evals:
            session.execute(
                _EVALS.insert(),
                [
                    {
                        "version_id": version_id,
                        "metric": e.metric,
                        "value": e.value,
                        "dataset": e.dataset,
                        "recorded_at": at,
                        "recorded_by": self.user,
                        "source": source,
                    }
                    for e in evals
                ],
            )

    def add_evals(self, ref: Ref, evals: Sequence[Evaluation]) -> tuple[str, tuple[EvalRecord, ...]]:
        """Append evaluation results to a version (they never replace earlier ones)."""
        if not evals:
            raise InvalidMetadata("give at least one --metric NAME=VALUE", "evals")
        with self.db.write() as session:
            self.identity.require(session, "eval add")
            row = self.resolve_row(session, ref)
            label = f"{ref.name}:{row.number}"
            at = now_iso()
            self._insert_evals(session, row.id, evals, source="eval add", at=at)
            self.audit.append(session, self.user, "eval add", label, {"evals": [e.to_dict() for e in evals]})
        recorded = tuple(
            EvalRecord(
                metric=e.metric,
                value=e.value,
                dataset=e.dataset,
                recorded_at=at,
                recorded_by=self.user,
                source="eval add",
            )
            for e in evals
        )
        return label, recorded

    # -- pull -----------------------------------------------------------------------------

    def pull(
        self,
        ref: Ref,
        out: str | os.PathLike[str],
        force: bool = False,
        progress: Progress | None = None,
        registry_info: dict[str, Any] | None = None,
        allow_revoked: bool = False,
    ) -> PullResult:
        with self.db.read() as session:
            row = self.resolve_row(session, ref)
            if not allow_revoked and self.states(session, [row.id])[row.id] == "revoked":
                revoked = [t for t in records.transitions(session, row.id) if t.to_state == "revoked"][-1]
                raise PermissionDenied(
                    f"{ref} ({row.digest[:19]}…) was revoked at {revoked.at} by {revoked.actor}: {revoked.reason}; "
                    "it must not be served. Pass --allow-revoked to pull it anyway (for investigation)"
                )
        manifest = self.manifest_of(row)
        target = Path(out).expanduser().absolute()
        _check_destination(target, force)
        with temporary_sibling_dir(target) as tmp:
            self.export_files(manifest, tmp, progress, shown_target=target)
            provenance = {
                "ref": str(ref),
                "name": manifest.name,
                "version": manifest.version,
                "digest": row.digest,
                "registry": registry_info or {},
                "pulled_at": now_iso(),
                "pulled_by": self.user,
                "files": [f.to_dict() for f in manifest.files],
            }
            atomic_write_bytes(tmp / PROVENANCE_FILE, json.dumps(provenance, indent=2).encode("utf-8") + b"\n")
            publish_dir(tmp, target)
        return PullResult(
            name=manifest.name, version=manifest.version, digest=row.digest, path=target, files=manifest.files
        )

    def export_files(
        self, manifest: Manifest, directory: Path, progress: Progress | None = None, shown_target: Path | None = None
    ) -> None:
        """Write a version's files into ``directory``, re-hashing each; raise IntegrityError on any mismatch."""
        label = f"{manifest.name}:{manifest.version}"
        for entry in manifest.files:
            self._export(entry, directory, label, shown_target or directory, progress)
        for d in {(directory / e.path).parent for e in manifest.files}:
            fsync_dir(d)

    def _export(self, entry: FileEntry, tmp: Path, label: str, target: Path, progress: Progress | None) -> None:
        dst = tmp / entry.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            sha, size = self.store.export(entry.sha256, dst, progress, entry.path)
        except FileNotFoundError:
            raise IntegrityError(
                f"{label}: blob {entry.sha256} for {entry.path} is missing from the blob store "
                f"{self.store.root}; nothing was written to {target}. Restore the store from a backup",
                path=entry.path,
            ) from None
        if sha != entry.sha256 or size != entry.size:
            raise IntegrityError(
                f"{label}: {entry.path} is corrupted in the blob store (expected sha256 {entry.sha256}, "
                f"{entry.size} bytes; found {sha}, {size} bytes); nothing was written to {target}. "
                "Restore the blob from a backup or push the original files again",
                path=entry.path,
            )

    # -- list / show ----------------------------------------------------------------------

    def list(self, flt: ListFilter) -> list[VersionSummary]:
        v, a = _VERSIONS, _ADAPTERS
        query = select(
            v.c.id,
            a.c.name,
            v.c.number,
            v.c.digest,
            v.c.created_at,
            v.c.created_by,
            v.c.peft_type,
            v.c.r,
            v.c.base_name,
            v.c.base_fingerprint,
            v.c.quantization,
            v.c.size,
        ).join(a, a.c.id == v.c.adapter_id)
        if flt.pattern:
            if any(c in flt.pattern for c in "*?"):
                query = query.where(a.c.name.like(_like_pattern(flt.pattern), escape="\\"))
            else:
                query = query.where(
                    or_(a.c.name == flt.pattern, a.c.name.like(_like_pattern(flt.pattern) + "/%", escape="\\"))
                )
        if flt.base:
            fp = flt.base.lower().removeprefix("sha256:")
            query = query.where(
                or_(v.c.base_name == flt.base, v.c.base_fingerprint.like(f"sha256:{_like_pattern(fp)}%", escape="\\"))
            )
        if flt.peft_type:
            query = query.where(v.c.peft_type == flt.peft_type.upper())
        if flt.min_rank is not None:
            query = query.where(v.c.r >= flt.min_rank)
        if flt.max_rank is not None:
            query = query.where(v.c.r <= flt.max_rank)
        if flt.quantization:
            query = query.where(v.c.quantization == flt.quantization.lower())
        if flt.latest:
            other = _VERSIONS.alias("other")
            latest = select(func.max(other.c.number)).where(other.c.adapter_id == v.c.adapter_id).scalar_subquery()
            query = query.where(v.c.number == latest)
        query = query.order_by(a.c.name, v.c.number)
        with self.db.read() as session:
            rows = session.execute(query).all()
            states = self.states(session, [r[0] for r in rows])
        return [
            VersionSummary(
                name=r[1],
                version=r[2],
                digest=r[3],
                state=states[r[0]],
                created_at=r[4],
                created_by=r[5],
                peft_type=r[6],
                r=r[7],
                base=r[8],
                base_fingerprint=r[9],
                quantization=r[10],
                size=r[11],
            )
            for r in rows
        ]

    def show(self, ref: Ref) -> VersionInfo:
        with self.db.read() as session:
            return self.version_info(session, self.resolve_row(session, ref))

    def version_info(self, session: Session, row: Any) -> VersionInfo:
        """Every recorded fact of the version in ``row``."""
        manifest = self.manifest_of(row)
        evals = session.execute(select(_EVALS).where(_EVALS.c.version_id == row.id).order_by(_EVALS.c.id)).all()
        return VersionInfo(
            manifest=manifest,
            digest=row.digest,
            state=self.states(session, [row.id])[row.id],
            evals=tuple(records.eval_record(e) for e in evals),
        )


def _check_destination(target: Path, force: bool) -> None:
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise DestinationExists(str(target))
        if any(target.iterdir()) and not force:
            raise DestinationExists(str(target))
