"""Pushes and pulls through ``adapters serve``: the server's side (the client's is
:mod:`registry.remote.calls.transfer`).

As the OCI distribution spec does it, blobs go first and the manifest last:

1. the client hashes its files and asks which blobs the store lacks (:meth:`Transfers.missing`);
   each missing one comes with how to upload it: streamed through the server into a local store
   (:meth:`Transfers.receive`), or straight to S3 by presigned URLs (:mod:`registry.storage.blobs.s3upload`),
   then confirmed (:meth:`Transfers.complete`): the server re-hashes what landed and keeps nothing
   that does not hash to its name;
2. the client commits the version (:meth:`Transfers.commit`) with only the file list (path, sha256,
   size) and the user's statements (name, base, quantization, datasets, evals, training, description,
   parent). Every adapter fact is read again from the stored config and safetensors headers; no blob
   that is missing, of another size, or a pickle is accepted; the version is recorded in the same one
   write transaction as an embedded push (:func:`registry.catalog.push.record_version`).

A push interrupted anywhere (the client killed, the server restarted) leaves no version: at most
blobs no version references (``adapters gc`` removes them) or a temporary upload; run again, it
uploads only what is still missing.

**The base model.** An embedded push fingerprints the base on the machine that has it. Through a
server the base directory is on the client, so the client resolves it exactly as the embedded push
does (:func:`registry.catalog.push.resolve_push_base`: a directory or the local Hugging Face cache,
hashed there) and sends the result: name, revision, source, path, the per-file weight listing and
the fingerprint. The server cannot read those weights; it checks that the assertion is well formed
and consistent (every sha256 is 64 hex digits, the fingerprint is the digest of the listing sent,
``unverified`` only without a fingerprint, a known source) and records it as the pushing user's
statement, as it records their datasets and evals. What proves it is later: ``verify`` and
``merge`` on a host with the base re-fingerprint it and refuse a mismatch, naming the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from registry._io import CHUNK_SIZE, scratch_dir
from registry.catalog.headers import MAX_HEADER_BYTES, read_uploaded_adapter
from registry.catalog.push import record_version, resolve_parent
from registry.catalog.resolve import check_push_record, resolve, state_of
from registry.catalog.results import PushResult
from registry.domain.actor import Actor
from registry.domain.adapterdir import ADAPTER_CONFIG, ADAPTER_WEIGHTS, PROVENANCE_FILE, target_warnings
from registry.domain.canonical import listing_digest
from registry.domain.lineage import PushMetadata
from registry.domain.pickles import PICKLE_SUFFIXES, pickle_reason
from registry.domain.refs import Ref, validate_name
from registry.domain.roles import required_roles
from registry.domain.versions import BaseModel, FileEntry
from registry.errors import BlobMissing, InvalidAdapter, InvalidInput, InvalidMetadata, PermissionDenied, TooLarge

if TYPE_CHECKING:
    from registry.catalog.service import Catalog
    from registry.storage.blobs.local import IncomingBlob

__all__ = ["MAX_FILES", "PullPlan", "Transfers", "check_asserted_base", "check_file_list"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BASE_SOURCES = frozenset({"local", "hf-cache", "unresolved"})
#: Most files one push may name (a PEFT adapter has a handful; tokenizers add a few).
MAX_FILES = 10_000


@dataclass(frozen=True)
class PullPlan:
    """What a client needs to pull a version: its files and, per file, where to get its bytes."""

    name: str
    version: int
    digest: str
    files: tuple[FileEntry, ...]
    downloads: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "files": [{**f.to_dict(), "download": d} for f, d in zip(self.files, self.downloads, strict=True)],
        }


def _sha(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise InvalidInput(f"{what}: {value!r} is not a sha256 (64 lower-case hex digits)")
    return value


def _size(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{what}: the size {value!r} is not a number of bytes")
    return value


def check_file_list(files: Sequence[Mapping[str, Any]]) -> tuple[FileEntry, ...]:
    """A push's file list, checked: relative ``/`` paths inside the adapter directory, each once, a sha256
    and a size each, ``adapter_config.json`` and ``adapter_model.safetensors`` among them, no pickle by name."""
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a push may name at most {MAX_FILES} files, not {len(files)}")
    entries: list[FileEntry] = []
    seen: set[str] = set()
    for i, f in enumerate(files):
        path = f.get("path")
        if not isinstance(path, str) or not path:
            raise InvalidInput(f"files[{i}] has no path")
        pure = PurePosixPath(path)
        if pure.is_absolute() or any(p in ("", ".", "..") for p in path.split("/")) or "\\" in path or "\0" in path:
            raise InvalidInput(f"files[{i}]: {path!r} is not a relative path inside the adapter directory")
        if path in seen:
            raise InvalidInput(f"files[{i}]: {path!r} is named twice")
        if path == PROVENANCE_FILE:
            raise InvalidInput(f"{PROVENANCE_FILE} describes a pull, not the adapter; it is never pushed")
        if pure.suffix.lower() in PICKLE_SUFFIXES:
            raise InvalidAdapter(
                f"{path} is a pickle-based file ({pure.suffix.lower()}); the registry never stores or loads pickles "
                "because unpickling can run arbitrary code. Convert it to safetensors and push again",
                path,
            )
        seen.add(path)
        entries.append(FileEntry(path=path, sha256=_sha(f.get("sha256"), path), size=_size(f.get("size"), path)))
    for required in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if required not in seen:
            raise InvalidAdapter(
                f"the push names no {required}; push the directory peft's save_pretrained wrote", required
            )
    return tuple(sorted(entries, key=lambda e: e.path))


def check_asserted_base(base: BaseModel) -> BaseModel:
    """The base a client resolved, if it is well formed and consistent (see the module's documentation)."""
    if base.source is not None and base.source not in _BASE_SOURCES:
        raise InvalidMetadata(f"base source {base.source!r} is not one of {', '.join(sorted(_BASE_SOURCES))}", "base")
    if base.weights is not None:
        for path, sha in base.weights:
            _sha(sha, f"base weight {path}")
    if base.fingerprint is not None:
        if not base.fingerprint.startswith("sha256:") or not _HEX64.match(base.fingerprint.removeprefix("sha256:")):
            raise InvalidMetadata(f"base fingerprint {base.fingerprint!r} is not sha256:<64 hex digits>", "base")
        if base.weights is None or listing_digest(base.weights) != base.fingerprint:
            raise InvalidMetadata(
                f"base fingerprint {base.fingerprint} is not the digest of the weight files listed with it; "
                "fingerprint the base again (adapters push --base DIR)",
                "base",
            )
        if base.unverified:
            raise InvalidMetadata("a base with a fingerprint cannot be marked unverified", "base")
        if base.files is not None and base.files != len(base.weights):
            raise InvalidMetadata(f"base files={base.files} but {len(base.weights)} weight files are listed", "base")
    elif base.weights:
        raise InvalidMetadata("a base with weight files listed needs their fingerprint", "base")
    return base


class Transfers:
    """The server's side of pushes and pulls, for an actor known by their token."""

    def __init__(self, catalog: Catalog, max_blob_bytes: int) -> None:
        self.catalog = catalog
        self.max_blob_bytes = max_blob_bytes

    # -- uploads ---------------------------------------------------------------------------

    def _may_push(self, actor: Actor, name: str | None = None) -> None:
        """Refuse an actor who may not push ``name`` (None, for bytes not yet named: may push anywhere)."""
        with self.catalog.store.read() as records:
            if name is not None or not records.user_count():
                self.catalog.identity.allowed(records, actor, "push", name)
                return
            grants = self.catalog.identity.access(records, actor).grants
            if not any(g.role in required_roles("push") for g in grants):
                self.catalog.identity.allowed(records, actor, "push")  # refused, with the roles named

    def _within_limit(self, sha256: str, size: int) -> None:
        if size > self.max_blob_bytes:
            raise TooLarge(
                f"blob {sha256} is {size:,} bytes, over this registry server's limit of {self.max_blob_bytes:,} "
                "bytes per file (ADAPTERS_MAX_BLOB_BYTES on the server); nothing was stored. Ask its operator to "
                "raise the limit, or push embedded on the server host",
                size,
                self.max_blob_bytes,
            )

    def missing(self, actor: Actor, blobs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The blobs of ``blobs`` (sha256 and size each) the store lacks, each with how to upload it."""
        self._may_push(actor)
        if len(blobs) > MAX_FILES:
            raise InvalidInput(f"ask about at most {MAX_FILES} blobs at once, not {len(blobs)}")
        wanted: dict[str, int] = {}
        for i, b in enumerate(blobs):
            sha, size = _sha(b.get("sha256"), f"blobs[{i}]"), _size(b.get("size"), f"blobs[{i}]")
            self._within_limit(sha, size)
            wanted[sha] = size
        out = []
        for sha, size in sorted(wanted.items()):
            if self._has(sha, size):
                continue
            out.append({"sha256": sha, "size": size, "upload": self._how_to_upload(sha, size)})
        return out

    def _has(self, sha256: str, size: int) -> bool:
        """The blob is stored with this size (and, on S3, known to hash to its name: see s3upload.is_present)."""
        from registry.storage.blobs.s3 import S3BlobStore

        store = self.catalog.blobs
        if isinstance(store, S3BlobStore):
            from registry.storage.blobs import s3upload

            return s3upload.is_present(store, sha256, size)
        return store.size(sha256) == size

    def _how_to_upload(self, sha256: str, size: int) -> dict[str, Any]:
        from registry.storage.blobs.local import LocalBlobStore
        from registry.storage.blobs.s3 import S3BlobStore

        store = self.catalog.blobs
        if isinstance(store, LocalBlobStore):
            return {"via": "server"}
        if isinstance(store, S3BlobStore):
            from registry.storage.blobs import s3upload

            if s3upload.is_multipart(size):
                return s3upload.start_multipart(store, sha256, size)
            return s3upload.presign_put(store, sha256, size)
        raise InvalidInput(f"the blob store {store.url} takes no uploads through the server; push embedded")

    def receive(self, actor: Actor, sha256: str, size: int) -> IncomingBlob:
        """A blob streamed through the server into a local store: write its chunks, then ``finish()``."""
        from registry.storage.blobs.local import LocalBlobStore

        _sha(sha256, "the blob's name")
        self._may_push(actor)
        self._within_limit(sha256, size)
        store = self.catalog.blobs
        if not isinstance(store, LocalBlobStore):
            raise InvalidInput(
                f"the blob store {store.url} is not a directory: upload to the URLs `POST /api/v1/blobs/missing` "
                "hands out (this client is older than the server?)"
            )
        return store.receive(sha256, size)

    def part_url(
        self, actor: Actor, sha256: str, size: int, upload_id: str, number: int, part_sha256: str
    ) -> dict[str, Any]:
        """The presigned URL of one part of a multipart upload, the part's SHA-256 signed."""
        from registry.storage.blobs import s3upload

        self._may_push(actor)
        self._within_limit(sha256, size)
        return s3upload.presign_part(
            self._s3(), _sha(sha256, "blob"), size, upload_id, number, _sha(part_sha256, f"part {number}")
        )

    def complete(self, actor: Actor, sha256: str, size: int, upload_id: str | None) -> dict[str, Any]:
        """After a client's upload to S3: complete a multipart upload, then re-hash the object from the
        store; one that is not ``size`` bytes hashing to ``sha256`` is deleted (:class:`InvalidInput`)."""
        from registry.storage.blobs import s3upload

        self._may_push(actor)
        self._within_limit(sha256, size)
        store = self._s3()
        new = True
        if upload_id is not None:
            new = s3upload.complete_multipart(store, _sha(sha256, "blob"), size, upload_id)
        if new:
            s3upload.confirm_upload(store, sha256, size)
        return {"sha256": sha256, "size": size, "new": new}

    def _s3(self) -> Any:
        from registry.storage.blobs.s3 import S3BlobStore

        store = self.catalog.blobs
        if not isinstance(store, S3BlobStore):
            raise InvalidInput(f"the blob store {store.url} is not S3: stream the blob to PUT /api/v1/blobs/SHA256")
        return store

    # -- the commit ------------------------------------------------------------------------

    def commit(
        self,
        actor: Actor,
        name: str,
        files: Sequence[Mapping[str, Any]],
        base: Mapping[str, Any] | None,
        meta: Mapping[str, Any],
    ) -> PushResult:
        """Record the version whose blobs are all in the store, its facts read from them."""
        validate_name(name)
        self._may_push(actor, name)
        entries = check_file_list(files)
        for e in entries:
            self._within_limit(e.sha256, e.size)
        stated = PushMetadata.from_mapping(
            {k: v for k, v in meta.items() if k not in ("base", "base_name", "base_revision")}, "the push's metadata"
        )
        asserted = check_asserted_base(BaseModel.from_dict(base or {}))
        self._present(name, entries)
        contents = read_uploaded_adapter(self.catalog.blobs, name, entries)
        if not contents.tensors:
            raise InvalidAdapter(f"{ADAPTER_WEIGHTS} holds no tensors; re-save the trained adapter", ADAPTER_WEIGHTS)
        self._no_pickles(name, entries)
        warnings = target_warnings(contents.facts, contents.tensors, Path(name))
        parent = resolve_parent(self.catalog, actor, stated.parent) if stated.parent else None
        manifest = record_version(
            self.catalog, actor, name, stated, contents.facts, asserted, stated.datasets, parent, entries,
            last_try=True,
        )  # fmt: skip
        return PushResult(
            name=name,
            version=manifest.version,
            digest=manifest.digest,
            size=manifest.size,
            files=len(entries),
            new_bytes=0,
            base=asserted,
            warnings=tuple(warnings),
        )

    def _present(self, name: str, entries: Sequence[FileEntry]) -> None:
        absent = [e for e in entries if not self._has(e.sha256, e.size)]
        if absent:
            shown = ", ".join(f"{e.path} ({e.sha256[:12]}…, {e.size:,} bytes)" for e in absent[:5])
            raise InvalidInput(
                f"the push of {name} names files whose blobs are not in the store with that sha256 and size: {shown}; "
                "upload them first (run the push again: it uploads only what is missing)"
            )

    def _no_pickles(self, name: str, entries: Sequence[FileEntry]) -> None:
        """Every file but safetensors is judged by its content too, as an embedded push judges it."""
        others = [e for e in entries if not e.path.endswith(".safetensors")]
        if not others:
            return
        with scratch_dir("adapters-sniff-") as tmp:
            for e in others:
                copy = tmp / "blob"
                with self.catalog.blobs.open(e.sha256) as src, open(copy, "wb") as dst:
                    while chunk := src.read(CHUNK_SIZE):
                        dst.write(chunk)
                reason = pickle_reason(copy, PurePosixPath(e.path).name)
                copy.unlink()
                if reason is not None:
                    raise InvalidAdapter(
                        f"{e.path} in the push of {name} is {reason}; the registry never stores or loads pickles "
                        "because unpickling can run arbitrary code. Convert it to safetensors and push again",
                        e.path,
                    )

    # -- downloads -------------------------------------------------------------------------

    def _version(self, actor: Actor, ref: Ref, allow_revoked: bool) -> Any:
        with self.catalog.store.read() as records:
            version = resolve(records, ref, self.catalog.identity.access(records, actor))
            check_push_record(records, version)
            if not allow_revoked and state_of(records, version) == "revoked":
                revoked = [t for t in records.transitions([version.id]).get(version.id, []) if t.to_state == "revoked"][
                    -1
                ]
                raise PermissionDenied(
                    f"{ref} ({version.digest[:19]}…) was revoked at {revoked.at} by {revoked.actor}: {revoked.reason}; "
                    "it must not be served. Pass --allow-revoked to pull it anyway (for investigation)"
                )
        return version

    def pull_plan(self, actor: Actor, ref: Ref, allow_revoked: bool) -> PullPlan:
        """A version's files and where to download each (refused for a revoked version unless allowed)."""
        from registry.storage.blobs.s3 import S3BlobStore

        version = self._version(actor, ref, allow_revoked)
        manifest = version.manifest()
        store = self.catalog.blobs
        downloads: list[dict[str, Any]] = []
        for f in manifest.files:
            if isinstance(store, S3BlobStore):
                from registry.storage.blobs import s3upload

                downloads.append(s3upload.presign_get(store, f.sha256))
            else:
                downloads.append({"via": "server"})
        return PullPlan(manifest.name, manifest.version, version.digest, manifest.files, tuple(downloads))

    def open_blob(
        self, actor: Actor, ref: Ref, sha256: str, allow_revoked: bool, span: tuple[int, int] | None = None
    ) -> tuple[Iterator[bytes], int]:
        """The bytes of one file of the version ``ref`` (a blob of no version the caller names is not served);
        ``span`` (start, length): only those bytes (a safetensors header, for static verification)."""
        version = self._version(actor, ref, allow_revoked)
        entry = next((f for f in version.manifest().files if f.sha256 == sha256), None)
        if entry is None:
            from registry.errors import NotFound

            raise NotFound(f"{ref} has no file with sha256 {sha256}; ask for its files with GET /api/v1/pulls/{ref}")
        try:
            if span is not None:
                start, length = span
                if start < 0 or not 0 <= length <= MAX_HEADER_BYTES + 8:
                    raise InvalidInput(
                        f"a ranged read of {entry.path} asks for {length:,} bytes from byte {start:,}: ranges serve "
                        f"safetensors headers (at most {MAX_HEADER_BYTES + 8:,} bytes); download the file whole instead"
                    )
                data = self.catalog.blobs.read_range(sha256, start, length)
                return iter((data,)), len(data)
            stream = self.catalog.blobs.open(sha256)
        except BlobMissing:
            from registry.errors import IntegrityError

            raise IntegrityError(
                f"{ref}: blob {sha256} for {entry.path} is missing from the blob store; restore the store from a "
                "backup",
                path=entry.path,
            ) from None
        return _chunks(stream), entry.size


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk
    finally:
        stream.close()
