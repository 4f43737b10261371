"""Base models: find them on this machine and fingerprint them by content.

A base is given as a local directory or a Hugging Face model id. Its fingerprint is
the digest of the sorted ``(file name, sha256)`` list of its weight files (see
:func:`registry.domain.canonical.listing_digest`), named by their path relative to the
deepest directory that holds them all, wherever that sits inside the directory given. Weight files are the
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
from registry.errors import InvalidInput, NotFound
from registry.filehashes import FileHashCache

__all__ = [
    "DirectoryFingerprint",
    "ResolvedBase",
    "fingerprint_directory",
    "looks_like_hub_id",
    "recorded_base_spec",
    "resolve_base",
]

_PREFERRED = (".safetensors",)
_OTHER_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_SNAPSHOT = re.compile(
    r"/(models|datasets|spaces)--(?P<org>[^/]+?)(--(?P<name>[^/]+))?/snapshots/(?P<rev>[0-9a-f]{40})/?$"
)


@dataclass(frozen=True)
class ResolvedBase:
    """A base model as found on this machine (``directory`` is None when only its name is known).

    ``files`` are the ``(path, sha256 hex)`` of its weight files, relative to ``weights_dir``, the
    deepest directory holding all of them (where a loader finds the model). ``also_known_as`` holds
    the fingerprint as releases before it listed the files (relative to ``directory``), when that
    differs, so that a fingerprint recorded then still matches.
    """

    base: BaseModel
    directory: Path | None
    files: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    weights_dir: Path | None = None
    also_known_as: tuple[str, ...] = ()

    @property
    def model_dir(self) -> Path | None:
        """The directory that holds the model's weights (``directory`` when it has none)."""
        return self.weights_dir or self.directory


@dataclass(frozen=True)
class DirectoryFingerprint:
    """The fingerprint of a model directory, over its weight files listed relative to ``root``."""

    digest: str | None  # None: no weight files
    files: tuple[tuple[str, str], ...]
    root: Path | None  # the deepest directory that contains every weight file
    as_listed_from_directory: str | None = None  # the digest over paths relative to the directory, if it differs


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
) -> DirectoryFingerprint:
    """The fingerprint of a model directory: the listing digest of its weight files, by path relative to
    the deepest directory that holds them all, so that ``base/`` and a ``parent/`` holding only
    ``base/`` fingerprint alike; a directory with weight files at its top is listed from itself."""
    weights = _weight_files(directory)
    if not weights:
        return DirectoryFingerprint(None, (), None)

    def sha(path: Path) -> tuple[str, int]:
        from_hub = _hub_blob_sha(path)
        return (from_hub or cache.sha256(path, progress, path.name)), 0

    hashes = [h for h, _ in map_threads(sha, weights, workers=min(4, os.cpu_count() or 1))]
    root = Path(os.path.commonpath([p.parent for p in weights]))
    files = tuple((p.relative_to(root).as_posix(), h) for p, h in zip(weights, hashes, strict=True))
    listed_before = None
    if root != directory:
        listed_before = listing_digest(
            (p.relative_to(directory).as_posix(), h) for p, h in zip(weights, hashes, strict=True)
        )
    return DirectoryFingerprint(listing_digest(files), files, root, listed_before)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or (os.sep in spec and not _REPO_ID.match(spec))


def looks_like_hub_id(text: str | None) -> bool:
    """Whether ``text`` (a config's ``base_model_name_or_path``) names a Hub model rather than a directory."""
    if not text or _looks_like_path(text) or not _REPO_ID.match(text):
        return False
    return not Path(text).expanduser().is_dir()  # "out/base" may be a relative path that exists here


def _from_hf_cache(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot directory of a Hub model, or None; never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, ValueError, OSError):
        return None


def recorded_base_spec(recorded: BaseModel, given: str | None, label: str) -> tuple[str, str | None]:
    """(spec, name) to find the base a version is checked against or merged into: ``given`` (``--base``)
    when there is one, named as it is found; else the recorded directory if it is still there, else the
    recorded name (a Hub id is looked up in the local cache), either named by the recorded name."""
    if given:
        return given, None
    if recorded.path and Path(recorded.path).is_dir():
        return recorded.path, recorded.name
    if recorded.name:
        return recorded.name, recorded.name
    raise InvalidInput(f"{label} has no recorded base; pass --base DIR")


def resolve_base(
    spec: str,
    revision: str | None,
    cache: FileHashCache,
    progress: Progress | None = None,
    name: str | None = None,
) -> ResolvedBase:
    """Find a base model by directory or Hub id and fingerprint it.

    Its name is ``name`` when given, else the model id of a Hugging Face cache snapshot, else the
    id given, else the directory's absolute path. A directory given is recorded as ``path``.
    """
    path = Path(spec).expanduser()
    given: str | None = None
    if path.is_dir():
        directory = path.resolve()
        given, found, rev, source = str(directory), str(directory), revision, "local"
        snap = _SNAPSHOT.search(directory.as_posix())
        if snap:  # a snapshot inside a Hugging Face cache: record the model id and commit
            found = snap["org"] + (f"/{snap['name']}" if snap["name"] else "")
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
                base=BaseModel(name=name or spec, revision=revision, fingerprint=None, source="unresolved"),
                directory=None,
                warnings=(
                    f"base {spec!r} is neither a local directory nor in the local Hugging Face cache; it is "
                    "recorded by name only, with no content fingerprint, so later checks cannot prove which "
                    f"weights it means. Download it first (hf download {spec}) or pass its directory.",
                ),
            )
        directory, found, rev, source = snapshot, spec, snapshot.name, "hf-cache"
    fp = fingerprint_directory(directory, cache, progress)
    base = BaseModel(
        name=name or found,
        revision=rev,
        fingerprint=fp.digest,
        source=source,
        files=len(fp.files) or None,
        path=given,
        weights=fp.files if fp.digest is not None else None,
    )
    aliases = (fp.as_listed_from_directory,) if fp.as_listed_from_directory else ()
    return ResolvedBase(base, directory, fp.files, weights_dir=fp.root, also_known_as=aliases)
