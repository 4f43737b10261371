"""What the catalog's operations return, and the filter ``ls`` takes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.domain.versions import BaseModel, FileEntry

__all__ = ["ListFilter", "PullResult", "PushResult"]


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
