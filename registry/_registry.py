"""The facade: everything a user can do is a method of :class:`Registry`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry._io import Progress
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.refs import Ref
from registry.domain.verification import VerificationReport
from registry.domain.versions import VersionInfo, VersionSummary
from registry.errors import InvalidMetadata
from registry.services.catalog import Catalog, ListFilter, PullResult, PushResult
from registry.services.filehashes import FileHashCache
from registry.services.verify import Verifier, VerifyOptions
from registry.settings import Settings
from registry.storage.blobs import BlobStore
from registry.storage.db import Database

__all__ = ["Registry"]

RefLike = str | Ref
DatasetLike = str | Mapping[str, Any] | Dataset
MetaLike = str | os.PathLike[str] | Mapping[str, Any] | PushMetadata


def _ref(ref: RefLike) -> Ref:
    return ref if isinstance(ref, Ref) else Ref.parse(ref)


def _dataset(value: DatasetLike) -> Dataset:
    if isinstance(value, Dataset):
        return value
    if isinstance(value, str):
        return Dataset.parse(value)
    return Dataset.from_mapping(value)


def _evals(values: Mapping[str, float] | Iterable[str | Evaluation]) -> tuple[Evaluation, ...]:
    if isinstance(values, Mapping):
        return tuple(Evaluation(metric=k, value=float(v)) for k, v in values.items())
    return tuple(v if isinstance(v, Evaluation) else Evaluation.parse(v) for v in values)


def _meta(value: MetaLike | None) -> PushMetadata:
    if value is None:
        return PushMetadata()
    if isinstance(value, PushMetadata):
        return value
    if isinstance(value, Mapping):
        return PushMetadata.from_mapping(value)
    return PushMetadata.from_file(Path(value))


class Registry:
    """A registry of PEFT adapters: one metadata database and one blob store.

    >>> reg = Registry()                       # ADAPTERS_HOME / ADAPTERS_DB / ADAPTERS_STORE
    >>> reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B")
    >>> reg.pull("support-summarizer:1", "./adapter")
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        db: str | None = None,
        store: str | os.PathLike[str] | None = None,
        user: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        s = settings or Settings.from_env(home)
        if db is not None:
            s = replace(s, db_url=db)
        if store is not None:
            s = replace(s, store=os.fspath(store))
        if user is not None:
            s = replace(s, user=user)
        self.settings = s
        self._db = Database(s.db_url)
        self._store = BlobStore(s.store)
        self._hashes = FileHashCache(s.cache_dir)
        self._catalog = Catalog(self._db, self._store, self._hashes, s.user)
        self._verifier = Verifier(self._catalog, self._hashes, s.user)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hashes.close()
        self._db.dispose()

    @property
    def user(self) -> str:
        return self.settings.user

    def describe(self) -> dict[str, str]:
        """Where this registry keeps its data (passwords hidden)."""
        return {"db": self._db.redacted_url, "store": str(self._store.root), "user": self.user}

    # -- catalog --------------------------------------------------------------------------

    def push(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        base: str | None = None,
        base_revision: str | None = None,
        quantization: str | Mapping[str, Any] | Quantization | None = None,
        datasets: Iterable[DatasetLike] = (),
        evals: Mapping[str, float] | Iterable[str | Evaluation] = (),
        meta: MetaLike | None = None,
        training: Mapping[str, Any] | None = None,
        description: str | None = None,
        parent: RefLike | None = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """Store the adapter directory ``path`` as the next version of ``name``.

        ``meta`` (a YAML/JSON file path or a mapping) gives the same facts as the keyword
        arguments; the keyword arguments win.
        """
        if training is not None and not isinstance(training, Mapping):
            raise InvalidMetadata("training must be a mapping of parameter to value", "training")
        flags = PushMetadata(
            base=base,
            base_revision=base_revision,
            quantization=Quantization.parse(quantization) if quantization is not None else None,
            datasets=tuple(_dataset(d) for d in datasets),
            evals=_evals(evals),
            training=training,
            description=description,
            parent=str(parent) if parent is not None else None,
        )
        merged = _meta(meta).overridden_by(flags)
        return self._catalog.push(path, name, merged, progress)

    def pull(
        self,
        ref: RefLike,
        out: str | os.PathLike[str],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """Write the version ``ref`` to the directory ``out``, re-hashing every file."""
        return self._catalog.pull(_ref(ref), out, force=force, progress=progress, registry_info=self.describe())

    def ls(
        self,
        pattern: str | None = None,
        *,
        base: str | None = None,
        peft_type: str | None = None,
        min_rank: int | None = None,
        max_rank: int | None = None,
        quantization: str | None = None,
        latest: bool = False,
    ) -> list[VersionSummary]:
        """One entry per version (or per adapter's latest version with ``latest=True``), filtered."""
        return self._catalog.list(
            ListFilter(
                pattern=pattern,
                base=base,
                peft_type=peft_type,
                min_rank=min_rank,
                max_rank=max_rank,
                quantization=quantization,
                latest=latest,
            )
        )

    def show(self, ref: RefLike) -> VersionInfo:
        """Every fact recorded about one version, with its verification reports."""
        with self._db.read() as session:
            row = self._catalog.resolve_row(session, _ref(ref))
            info = self._catalog.version_info(session, row)
            return replace(info, verifications=self._verifier.reports(session, row.id))

    # -- verification ---------------------------------------------------------------------

    def verify(
        self,
        ref: RefLike,
        base: str | None = None,
        *,
        mode: str = "all",
        device: str = "auto",
        quant: str = "nf4",
        double_quant: bool = True,
        compute_dtype: str | None = None,
        allow_base_mismatch: bool = False,
    ) -> VerificationReport:
        """Check that version ``ref`` fits ``base`` (default: the recorded base, if it is on this machine).

        ``mode``: ``static`` (safetensors headers only), ``load`` (a real load on a 4-bit base with
        peft and a probe input) or ``all``. The report is stored with the version whatever its
        outcome; ``report.passed`` says whether every check passed.
        """
        options = VerifyOptions(
            mode=mode,
            device=device,
            quant=quant,
            double_quant=double_quant,
            compute_dtype=compute_dtype,
            allow_base_mismatch=allow_base_mismatch,
        )
        return self._verifier.verify(_ref(ref), base, options)
