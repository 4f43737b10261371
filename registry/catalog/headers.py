"""A stored version's config and safetensors headers, read from the blob store by ranges.

Static verification needs an adapter's config and the tensors its safetensors files declare,
never its weights. A safetensors file is an 8-byte little-endian length N, N bytes of JSON header,
then the tensor data; so each ``*.safetensors`` blob costs two ranged reads
(:meth:`~registry.storage.blobs.base.BlobStore.read_range`: bytes ``[0, 8)``, then ``[8, 8 + N)``),
a few kilobytes whatever the adapter's size, and on S3 two small GETs. ``adapter_config.json`` is
small: it is read whole and re-hashed.

The header is validated by safetensors itself, exactly as at push: the ``8 + N`` bytes are written
to a sparse scratch file as long as the file's recorded size, and ``safe_open`` parses it and checks
every tensor's offsets (contiguous, the data exactly covering the file) without reading any tensor
data (the rest of the file is a hole that is never touched). The tensors it declares must then give
the facts recorded at push (tensor count, parameters, dtypes).

What this does not prove: that the weights' bytes still hash to their name. Only the config is
re-hashed here; ``adapters fsck`` and every pull re-hash the weights.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

from registry._io import scratch_dir
from registry.domain.adapterconfig import MAX_CONFIG_BYTES, parse_config
from registry.domain.adapterdir import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    AdapterContents,
    PeftFacts,
    TensorInfo,
    adapter_contents,
    declared_tensors,
)
from registry.domain.versions import FileEntry, Manifest
from registry.errors import BlobMissing, IntegrityError, InvalidAdapter
from registry.storage.blobs.base import BlobStore

__all__ = ["MAX_HEADER_BYTES", "read_stored_adapter", "read_uploaded_adapter"]

#: The largest safetensors header read: safetensors' own limit (``MAX_HEADER_SIZE``, 100,000,000 bytes).
MAX_HEADER_BYTES = 100_000_000
_RESTORE = "restore the blob from a backup or push the original files again (`adapters fsck` lists what is damaged)"


def read_stored_adapter(blobs: BlobStore, manifest: Manifest) -> AdapterContents:
    """The checked config, facts and tensors of a stored version, read by ranges from ``blobs``.

    Raises :class:`IntegrityError` naming the version and file when a blob is missing, when the
    config no longer hashes to its name, or when a header is malformed, does not fit the file's
    recorded size or declares other tensors than were recorded at push.
    """
    label = f"{manifest.name}:{manifest.version}"
    files = {f.path: f for f in manifest.files}
    for required in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if required not in files:
            raise IntegrityError(
                f"{label} records no {required} among its files, which push never allows; the record was altered "
                "(run `adapters audit verify`)",
                name=manifest.name,
                version=manifest.version,
                path=required,
            )
    reader = _Reader(blobs, label, manifest.name, manifest.version, manifest.files)
    contents = reader.contents()
    reader.check_facts(contents.facts, manifest.peft)
    return contents


def read_uploaded_adapter(blobs: BlobStore, name: str, files: tuple[FileEntry, ...]) -> AdapterContents:
    """The checked config, facts and tensors of files a client uploaded for a new version of ``name``
    (a push through ``adapters serve``), read from ``blobs`` exactly as :func:`read_stored_adapter` reads
    a stored version's: the facts come from the stored bytes, never from the client."""
    return _Reader(blobs, f"the push of {name}", name, None, files).contents()


class _Reader:
    """Reads one version's blobs, naming the version and file in every error."""

    def __init__(
        self, blobs: BlobStore, label: str, name: str, version: int | None, files: tuple[FileEntry, ...]
    ) -> None:
        self.blobs = blobs
        self.label = label
        self.name = name
        self.version = version
        self.files = files

    def contents(self) -> AdapterContents:
        files = {f.path: f for f in self.files}
        config = self.config(files[ADAPTER_CONFIG])
        headers: dict[str, tuple[TensorInfo, ...]] = {}
        with scratch_dir("adapters-headers-") as tmp:
            for entry in self.files:
                if entry.path.endswith(".safetensors"):
                    headers[entry.path] = self.header(entry, tmp)
        return adapter_contents(config, headers[ADAPTER_WEIGHTS])

    def _error(self, entry: FileEntry, problem: str, fix: str = _RESTORE) -> IntegrityError:
        return IntegrityError(
            f"{self.label}: {entry.path} (blob {entry.sha256}) in the blob store {self.blobs.url} {problem}; {fix}",
            name=self.name,
            version=self.version,
            path=entry.path,
        )

    def _read(self, entry: FileEntry, start: int, length: int) -> bytes:
        try:
            return self.blobs.read_range(entry.sha256, start, length)
        except BlobMissing:
            raise self._error(entry, "is missing", "restore the store from a backup") from None

    def config(self, entry: FileEntry) -> dict[str, Any]:
        """The config, read whole (one byte more than recorded, to see a longer blob) and re-hashed."""
        shown = f"{self.label}: {entry.path}"
        if entry.size > MAX_CONFIG_BYTES:
            raise InvalidAdapter(
                f"{shown} is recorded as {entry.size:,} bytes, over the {MAX_CONFIG_BYTES >> 20} MiB an adapter "
                "config may have (peft writes a few KiB); the registry does not read it",
                shown,
            )
        data = self._read(entry, 0, entry.size + 1)
        found = hashlib.sha256(data).hexdigest()
        if len(data) > entry.size:
            raise self._error(entry, f"is corrupted: it holds more than its recorded {entry.size:,} bytes")
        if found != entry.sha256:
            raise self._error(
                entry,
                f"is corrupted (expected sha256 {entry.sha256}, {entry.size:,} bytes; found {found}, "
                f"{len(data):,} bytes)",
            )
        return parse_config(data, shown)

    def header(self, entry: FileEntry, tmp: Path) -> tuple[TensorInfo, ...]:
        """The tensors a safetensors blob declares: its length field, then its header, checked by safetensors."""
        from safetensors import SafetensorError

        first = self._read(entry, 0, 8)
        if len(first) < 8:
            raise self._error(
                entry,
                f"holds {len(first)} bytes where its recorded size is {entry.size:,}: too short for the 8-byte "
                "safetensors header length, so it was truncated",
            )
        (length,) = struct.unpack("<Q", first)
        if length > MAX_HEADER_BYTES or 8 + length > entry.size:
            limit = (
                f"over safetensors' limit of {MAX_HEADER_BYTES:,} bytes"
                if length > MAX_HEADER_BYTES
                else f"more than the file's recorded {entry.size:,} bytes hold after the 8-byte length"
            )
            raise self._error(
                entry, f"declares a safetensors header of {length:,} bytes, {limit}: its length field was altered"
            )
        header = self._read(entry, 8, length)
        if len(header) != length:
            raise self._error(
                entry,
                f"ends {8 + len(header):,} bytes in, inside its {length:,}-byte safetensors header (recorded size "
                f"{entry.size:,} bytes): it was truncated",
            )
        # safetensors checks the header against the whole file's size: a sparse file of the recorded size,
        # holding the header and a hole where the weights would be, is that file for everything it reads
        path = tmp / "header.safetensors"
        try:
            with open(path, "wb") as f:
                f.write(first + header)
                f.truncate(entry.size)
            return declared_tensors(path)
        except SafetensorError as exc:
            raise self._error(entry, f"has a safetensors header that safetensors refuses ({exc})") from None
        finally:
            path.unlink(missing_ok=True)

    def check_facts(self, found: PeftFacts, recorded: PeftFacts) -> None:
        """The tensors the stored header declares give the facts push recorded from the same header."""
        mine = (found.tensors, found.parameters, found.dtypes)
        theirs = (recorded.tensors, recorded.parameters, recorded.dtypes)
        if mine == theirs:
            return
        entry = next(f for f in self.files if f.path == ADAPTER_WEIGHTS)
        raise self._error(
            entry,
            f"declares {found.tensors} tensors, {found.parameters:,} parameters and dtypes {found.dtypes}, where "
            f"push recorded {recorded.tensors} tensors, {recorded.parameters:,} parameters and dtypes "
            f"{recorded.dtypes}: its header was altered",
        )
