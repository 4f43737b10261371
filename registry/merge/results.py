"""The merge's options and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput
from registry.types import BASE_PRECISIONS, MERGE_DTYPES

__all__ = ["METHOD", "MergeOptions", "MergeResult", "MergedFile"]

#: Recorded with every merged checkpoint: which merge produced it.
METHOD = "adapters-streaming-merge/1"


@dataclass(frozen=True)
class MergeOptions:
    dtype: str | None = None  # bfloat16|float16|float32; None keeps the base's dtypes
    base_precision: str = "original"  # or "nf4-dequantized"
    allow_base_mismatch: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in MERGE_DTYPES:
            raise InvalidInput(f"unknown dtype {self.dtype!r}; use {', '.join(MERGE_DTYPES)}")
        if self.base_precision not in BASE_PRECISIONS:
            raise InvalidInput(f"unknown base precision {self.base_precision!r}; use {', '.join(BASE_PRECISIONS)}")


@dataclass(frozen=True)
class MergedFile:
    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class MergeResult:
    ref: str
    digest: str
    out: Path
    base_name: str | None
    base_fingerprint: str | None
    recorded_base_fingerprint: str | None
    allow_base_mismatch: bool
    dtype: str | None
    base_precision: str
    files: tuple[MergedFile, ...]
    merged_tensors: int
    copied_tensors: int
    seconds: float
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "out": str(self.out),
            "method": METHOD,
            "base": {
                "name": self.base_name,
                "fingerprint": self.base_fingerprint,
                "recorded_fingerprint": self.recorded_base_fingerprint,
                "allow_mismatch": self.allow_base_mismatch,
            },
            "dtype": self.dtype,
            "base_precision": self.base_precision,
            "files": [f.to_dict() for f in self.files],
            "tensors": {"merged": self.merged_tensors, "copied": self.copied_tensors},
            "seconds": self.seconds,
            "warnings": list(self.warnings),
        }

    def release_details(self) -> dict[str, Any]:
        """What a release records about its merged checkpoint."""
        d = self.to_dict()
        return {"merged": {k: d[k] for k in ("out", "method", "base", "dtype", "base_precision", "files")}}
