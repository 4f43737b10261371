"""Pushing, pulling, listing and showing versions; evaluation results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry._facade._base import DatasetLike, FacadeBase, KeyLike, MetaLike, PathLike, RefLike, ref_of
from registry._io import Progress
from registry.catalog.results import ListFilter, MetricCondition, PullResult, PushResult
from registry.domain.annotations import parse_tag
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.versions import EvalRecord, VersionInfo, VersionSummary
from registry.errors import InvalidMetadata

__all__ = ["CatalogMethods"]


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


class CatalogMethods(FacadeBase):
    """Versions in and out."""

    def push(
        self,
        path: PathLike,
        *,
        name: str,
        base: str | None = None,
        base_name: str | None = None,
        base_revision: str | None = None,
        allow_unverified_base: bool = False,
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
        arguments; the keyword arguments win. ``base`` is a directory or a Hub id; ``base_name``
        names it (its Hub id) when ``base`` is a directory. A base directory without weight files
        is refused unless ``allow_unverified_base`` (recorded).
        """
        if training is not None and not isinstance(training, Mapping):
            raise InvalidMetadata("training must be a mapping of parameter to value", "training")
        flags = PushMetadata(
            base=base,
            base_name=base_name,
            base_revision=base_revision,
            allow_unverified_base=allow_unverified_base,
            quantization=Quantization.parse(quantization) if quantization is not None else None,
            datasets=tuple(_dataset(d) for d in datasets),
            evals=_evals(evals),
            training=training,
            description=description,
            parent=str(parent) if parent is not None else None,
        )
        return self._catalog.push(self._actor, path, name, _meta(meta).overridden_by(flags), progress)

    def pull(
        self,
        ref: RefLike,
        out: PathLike,
        *,
        force: bool = False,
        allow_revoked: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """Write the version ``ref`` to the directory ``out``, re-hashing every file.

        A revoked version is refused unless ``allow_revoked``.
        """
        return self._catalog.pull(
            self._actor, ref_of(ref), out, force, progress, registry_info=self.describe(), allow_revoked=allow_revoked
        )

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
        state: str | None = None,
        channel: str | None = None,
        where: Iterable[str | MetricCondition] = (),
        tags: Mapping[str, str] | Iterable[str] = (),
    ) -> list[VersionSummary]:
        """One entry per version (or per adapter's latest version with ``latest=True``), filtered; each
        with the channels that point to it and its tags. ``where``: conditions on the latest value of a
        metric (``"accuracy>=0.9"``, ``"loss@holdout<0.3"``); ``tags``: ``KEY=VALUE`` the version has now."""
        conditions = tuple(c if isinstance(c, MetricCondition) else MetricCondition.parse(c) for c in where)
        pairs = dict(tags) if isinstance(tags, Mapping) else dict(parse_tag(t) for t in tags)
        return self._catalog.list(
            self._actor,
            ListFilter(
                pattern, base, peft_type, min_rank, max_rank, quantization=quantization, latest=latest,
                state=state, channel=channel, where=conditions, tags=tuple(sorted(pairs.items())),
            )
        )  # fmt: skip

    def show(self, ref: RefLike) -> VersionInfo:
        """Every fact recorded about one version: evals, verifications, approvals, history, channels."""
        return self._catalog.show(self._actor, ref_of(ref))

    def add_evals(
        self,
        ref: RefLike,
        metrics: Mapping[str, float] | Iterable[str | Evaluation],
        *,
        dataset: str | None = None,
        key: KeyLike | None = None,
    ) -> tuple[str, tuple[EvalRecord, ...]]:
        """Append evaluation results (``{"accuracy": 0.91}`` or ``["accuracy=0.91"]``) to a version."""
        evals = tuple(replace(e, dataset=dataset) if dataset is not None else e for e in _evals(metrics))
        return self._catalog.add_evals(self._actor, ref_of(ref), evals, self._signer(key))
