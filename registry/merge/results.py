"""The merge's options and what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput
from registry.types import BASE_PRECISIONS, MERGE_DTYPES

__all__ = ["MAX_MERGED_FILES", "METHOD", "MergeOptions", "MergeResult", "MergedFile", "submitted_merge"]

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


_SHA256 = frozenset("0123456789abcdef")
#: The most files a merged checkpoint's record may list (a sharded 400B model has under 200).
MAX_MERGED_FILES = 10_000


def submitted_merge(details: Mapping[str, Any], recorded_fingerprint: str | None) -> dict[str, Any]:
    """The merged checkpoint a client reports with ``release --merge`` through the server, checked for
    shape and against what the server knows (the method, the recorded base); the release records it.

    The server has not seen the merged files (they are written where the base is), so this checks
    everything but their bytes: each file's path stays inside the checkpoint, each sha256 is one,
    each size a count of bytes, and a base other than the recorded one is allowed only when the
    merge was asked to allow it (and says so)."""

    def bad(problem: str) -> InvalidInput:
        return InvalidInput(f"the merged checkpoint's record {problem}; run `adapters release --merge` again")

    merged = details.get("merged") if isinstance(details, Mapping) else None
    if not isinstance(merged, Mapping):
        raise bad("is missing (expected {'merged': {...}})")
    if merged.get("method") != METHOD:
        raise bad(f"names the method {merged.get('method')!r}, not {METHOD!r}")
    base = merged.get("base")
    if not isinstance(base, Mapping) or not all(k in base for k in ("name", "fingerprint", "recorded_fingerprint")):
        raise bad("does not name its base (name, fingerprint, recorded_fingerprint)")
    if base.get("recorded_fingerprint") != recorded_fingerprint:
        raise bad("names another recorded base than the version's")
    if base.get("fingerprint") != recorded_fingerprint and recorded_fingerprint and not base.get("allow_mismatch"):
        raise bad("was merged into another base than the recorded one without --allow-base-mismatch")
    if merged.get("dtype") is not None and merged.get("dtype") not in MERGE_DTYPES:
        raise bad(f"names an unknown dtype {merged.get('dtype')!r}")
    if merged.get("base_precision") not in BASE_PRECISIONS:
        raise bad(f"names an unknown base precision {merged.get('base_precision')!r}")
    if not isinstance(merged.get("out"), str):
        raise bad("does not say where the checkpoint was written (out)")
    files = merged.get("files")
    if not isinstance(files, list) or not files or len(files) > MAX_MERGED_FILES:
        raise bad(f"lists no files, or more than {MAX_MERGED_FILES}")
    clean = []
    for f in files:
        if not isinstance(f, Mapping):
            raise bad("lists a file that is not {path, sha256, size}")
        path, sha, size = f.get("path"), f.get("sha256"), f.get("size")
        parts = path.split("/") if isinstance(path, str) else []
        if not parts or any(p in ("", ".", "..") for p in parts) or "\\" in str(path):
            raise bad(f"lists a file path {str(path)[:80]!r} that leaves the checkpoint")
        if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _SHA256:
            raise bad(f"gives {path} a sha256 that is not one (64 lower-case hex digits)")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"gives {path} a size that is not a count of bytes")
        clean.append(MergedFile(str(path), sha, size).to_dict())
    warnings = details.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise bad("has warnings that are not text")
    recorded = {k: merged[k] for k in ("out", "method", "dtype", "base_precision")}
    base_record = {k: base.get(k) for k in ("name", "fingerprint", "recorded_fingerprint", "allow_mismatch")}
    return {"merged": {**recorded, "base": base_record, "files": clean}, "warnings": list(warnings)}
