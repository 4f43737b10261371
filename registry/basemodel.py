"""Base models: find them on this machine and fingerprint them by content.

A base is given as a local directory or a Hugging Face model id. Its fingerprint is
the digest of the sorted ``(file name, sha256)`` list of its weight files (see
:func:`registry.domain.canonical.listing_digest`). Weight files are the
``*.safetensors`` files when there are any (what transformers loads), else the
other weight formats present.

Per-file sha256 values come, cheapest first, from the Hugging Face cache's blob
names (LFS files are stored under their sha256, so nothing is read), from the local
file-hash cache (unchanged path, size, mtime and inode), or by hashing the file.
Nothing is ever downloaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from registry._io import Progress, map_threads
from registry.domain.canonical import listing_digest
from registry.domain.versions import BaseModel
from registry.errors import NotFound
from registry.filehashes import FileHashCache

__all__ = ["ResolvedBase", "fingerprint_directory", "resolve_base"]

_PREFERRED = (".safetensors",)
_OTHER_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_SNAPSHOT = re.compile(
    r"/(models|datasets|spaces)--(?P<org>[^/]+?)(--(?P<name>[^/]+))?/snapshots/(?P<rev>[0-9a-f]{40})/?$"
)


@dataclass(frozen=True)
class ResolvedBase:
    """A base model as found on this machine (``directory`` is None when only its name is known)."""

    base: BaseModel
    directory: Path | None
    files: tuple[tuple[str, str], ...] = ()  # (relative path, sha256 hex) of its weight files
    warnings: tuple[str, ...] = ()


def _weight_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames)
    preferred = [p for p in found if p.suffix in _PREFERRED]
    return sorted(preferred or [p for p in found if p.suffix in _OTHER_WEIGHTS])


def _hub_blob_sha(path: Path) -> str | None:
    """The sha256 a Hugging Face cache records for an LFS file: the name of the blob it links to."""
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))
    if target.parent.name == "blobs" and _HEX64.match(target.name):
        return target.name
    return None


def fingerprint_directory(
    directory: Path, cache: FileHashCache, progress: Progress | None = None
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(fingerprint, files) of a model directory; fingerprint None when it holds no weight files."""
    weights = _weight_files(directory)
    if not weights:
        return None, ()

    def sha(path: Path) -> tuple[str, int]:
        from_hub = _hub_blob_sha(path)
        return (from_hub or cache.sha256(path, progress, path.name)), 0

    hashes = map_threads(sha, weights, workers=min(4, os.cpu_count() or 1))
    files = tuple((p.relative_to(directory).as_posix(), h) for p, (h, _) in zip(weights, hashes, strict=False))
    return listing_digest(files), files


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or (os.sep in spec and not _REPO_ID.match(spec))


def _from_hf_cache(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot directory of a Hub model, or None; never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, ValueError, OSError):
        return None


def resolve_base(
    spec: str,
    revision: str | None,
    cache: FileHashCache,
    progress: Progress | None = None,
) -> ResolvedBase:
    """Find a base model by directory or Hub id and fingerprint it."""
    path = Path(spec).expanduser()
    if path.is_dir():
        directory = path.resolve()
        name, rev, source = str(directory), revision, "local"
        snap = _SNAPSHOT.search(directory.as_posix())
        if snap:  # a snapshot inside a Hugging Face cache: record the model id and commit
            name = snap["org"] + (f"/{snap['name']}" if snap["name"] else "")
            rev, source = snap["rev"], "hf-cache"
    elif _looks_like_path(spec) or not _REPO_ID.match(spec):
        raise NotFound(
            f"base model directory {spec} does not exist; give an existing model directory or a Hugging Face "
            "model id (e.g. meta-llama/Llama-3.1-8B)"
        )
    else:
        snapshot = _from_hf_cache(spec, revision)
        if snapshot is None:
            return ResolvedBase(
                base=BaseModel(name=spec, revision=revision, fingerprint=None, source="unresolved"),
                directory=None,
                warnings=(
                    f"base {spec!r} is neither a local directory nor in the local Hugging Face cache; it is "
                    "recorded by name only, with no content fingerprint, so later checks cannot prove which "
                    f"weights it means. Download it first (hf download {spec}) or pass its directory.",
                ),
            )
        directory, name, rev, source = snapshot, spec, snapshot.name, "hf-cache"
    fingerprint, files = fingerprint_directory(directory, cache, progress)
    warnings: tuple[str, ...] = ()
    if fingerprint is None:
        warnings = (
            f"base {name} has no weight files (*.safetensors, *.bin, ...) in {directory}; no fingerprint recorded",
        )
    return ResolvedBase(
        base=BaseModel(name=name, revision=rev, fingerprint=fingerprint, source=source, files=len(files) or None),
        directory=directory,
        files=files,
        warnings=warnings,
    )
