"""What the catalog's operations return, and the filter ``ls`` takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from registry.domain.annotations import NoteRecord
from registry.domain.versions import BaseModel, FileEntry
from registry.errors import InvalidInput

__all__ = ["Annotated", "ListFilter", "MetricCondition", "PullResult", "PushResult"]


@dataclass(frozen=True)
class PushResult:
    """What a push created."""

    name: str
    version: int
    digest: str
    size: int
    files: int
    new_bytes: int  # bytes not already in the blob store
    base: BaseModel
    warnings: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "size": self.size,
            "files": self.files,
            "new_bytes": self.new_bytes,
            "base": self.base.to_dict(),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PullResult:
    """What a pull wrote."""

    name: str
    version: int
    digest: str
    path: Path
    files: tuple[FileEntry, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "path": str(self.path),
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True)
class ListFilter:
    """Filters for :meth:`Catalog.list`; every field left None matches everything."""

    pattern: str | None = None
    base: str | None = None
    peft_type: str | None = None
    min_rank: int | None = None
    max_rank: int | None = None
    quantization: str | None = None
    latest: bool = False
    state: str | None = None  # draft, in_review, approved, released, ...
    channel: str | None = None  # versions a channel points to now
    where: tuple[MetricCondition, ...] = ()  # every condition holds for the version's latest value
    tags: tuple[tuple[str, str], ...] = ()  # (key, value): the version's tag key is value now


@dataclass(frozen=True)
class MetricCondition:
    """``accuracy>=0.9`` (or ``accuracy@holdout>=0.9``): the latest recorded value of ``metric`` (on
    ``dataset``, else on any dataset) compared with ``value``. A version without the metric does not match."""

    metric: str
    op: str  # one of < <= > >= = !=
    value: float
    dataset: str | None = None

    OPERATORS: ClassVar[tuple[str, ...]] = ("<=", ">=", "!=", "<", ">", "=")

    @classmethod
    def parse(cls, text: str) -> MetricCondition:
        """``METRIC[@DATASET] OP NUMBER``, OP one of < <= > >= = != (``==`` reads as ``=``)."""
        spaced = text.replace("==", "=")
        for op in cls.OPERATORS:
            left, found, right = spaced.partition(op)
            if found:
                break
        else:
            raise InvalidInput(
                f'cannot read the condition {text!r}: write METRIC OP NUMBER, e.g. "accuracy>=0.9" or '
                '"loss@holdout<0.3" (OP: < <= > >= = !=)'
            )
        metric, _, dataset = left.strip().partition("@")
        try:
            value = float(right.strip())
        except ValueError:
            raise InvalidInput(f"in {text!r}, {right.strip()!r} is not a number") from None
        if not metric:
            raise InvalidInput(f"the condition {text!r} names no metric")
        return cls(metric, op, value, dataset.strip() or None)

    def __str__(self) -> str:
        at = f"@{self.dataset}" if self.dataset else ""
        return f"{self.metric}{at}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Annotated:
    """A version's tags and notes after ``tag``, ``untag`` or ``note``."""

    ref: str
    digest: str
    tags: dict[str, str]
    notes: tuple[NoteRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "tags": dict(self.tags),
            "notes": [n.to_dict() for n in self.notes],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Annotated:
        notes = tuple(NoteRecord.from_dict(n) for n in d.get("notes") or ())
        return cls(str(d["ref"]), str(d["digest"]), {str(k): str(v) for k, v in d["tags"].items()}, notes)
