"""Static verification reads the adapter's config and safetensors headers from the blob store by
ranged reads (the 8-byte length, then the header), never the weights, on a local directory and on
S3; a stored blob whose config or header was altered is named, with its version and file."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from stores import is_s3, overwrite_blob, read_blob

import tinymodels
from cli.main import cli
from registry import IntegrityError, Registry, Settings
from registry.storage.blobs.local import LocalBlobStore


class CountingStore(LocalBlobStore):
    """The local store, counting what is read from it (instrumentation: every read is the real one)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.calls: list[str] = []
        self.bytes_read = 0
        self._ranged = False

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        self._ranged = True  # the local store's read_range opens the file: not a stream handed out
        try:
            data = super().read_range(sha256, start, length)
        finally:
            self._ranged = False
        self.calls.append("read_range")
        self.bytes_read += len(data)
        return data

    def open(self, sha256: str) -> Any:
        if not self._ranged:
            self.calls.append("open")
        return super().open(sha256)

    def export(self, sha256: str, dst: Path, progress: Any = None, label: str = "") -> tuple[str, int]:
        self.calls.append("export")
        sha, size = super().export(sha256, dst, progress, label)
        self.bytes_read += size
        return sha, size


@pytest.fixture(scope="module")
def wide_adapter(tmp_path_factory: pytest.TempPathFactory, tiny_models) -> Path:
    """A LoRA adapter whose weights (r=128 on every linear layer, about 1.8 MB) dwarf its header."""
    base = tiny_models["llama"].base
    return tinymodels.make_adapter("llama", base, tmp_path_factory.mktemp("wide") / "lora", r=128, lora_alpha=128)


@pytest.fixture
def counted(backend) -> Iterator[tuple[Registry, Any]]:
    """A registry on the backend and a function giving (bytes read, operations) from its blob store so far."""
    if backend.name == "s3":
        reg = Registry()
        stats = reg._blobs.stats  # S3BlobStore.stats: what was asked of the server

        def s3_counts() -> tuple[int, dict[str, int]]:
            return stats.bytes_read, dict(stats.by_operation)

        with reg:
            yield reg, s3_counts
        return
    store = CountingStore(Settings.from_env().store)

    def local_counts() -> tuple[int, dict[str, int]]:
        ops: dict[str, int] = {}
        for call in store.calls:
            ops[call] = ops.get(call, 0) + 1
        return store.bytes_read, ops

    with Registry(blob_store=store) as reg:
        yield reg, local_counts


def _weights(reg: Registry, ref: str = "a:1") -> Any:
    return next(f for f in reg.show(ref).manifest.files if f.path == "adapter_model.safetensors")


def _config(reg: Registry, ref: str = "a:1") -> Any:
    return next(f for f in reg.show(ref).manifest.files if f.path == "adapter_config.json")


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def test_static_verify_reads_the_headers_only(counted, llama, wide_adapter: Path) -> None:
    reg, counts = counted
    reg.push(wide_adapter, name="a", base=str(llama.base))
    weights = _weights(reg)
    read_before, ops_before = counts()
    report = reg.verify("a", str(llama.base), mode="static")
    read, ops = counts()
    assert report.passed, [(c.name, c.message) for c in report.failures]
    header_length = struct.unpack("<Q", read_blob(reg, weights.sha256)[:8])[0]
    # the config whole, then the weights' 8-byte length and its header: nothing of the tensor data
    assert read - read_before == _config(reg).size + 8 + header_length
    assert read - read_before < 16 << 10 and (read - read_before) * 50 < weights.size
    assert _diff(ops, ops_before) == ({"GetObject": 3} if is_s3(reg) else {"read_range": 3})


def test_static_results_are_those_of_the_full_export(sqlite_reg: Registry, tiny_models, tmp_path: Path) -> None:
    """Mode ``all`` reads the headers from the exported (re-hashed) files: the static checks agree."""
    for kind, t in tiny_models.items():
        sqlite_reg.push(t.adapter, name=kind, base=str(t.base))
        static = sqlite_reg.verify(kind, str(t.base), mode="static")
        full = sqlite_reg.verify(kind, str(t.base), mode="all", device="cpu")
        assert static.passed and full.passed
        assert static.checks == full.checks[: len(static.checks)]
        assert static.not_checked == full.not_checked


def _patched_length(blob: bytes, length: int) -> bytes:
    return struct.pack("<Q", length) + blob[8:]


def _altered_header(blob: bytes, edit: Any) -> bytes:
    """The blob with its JSON header edited by ``edit`` (padded back to its length, so the data stays put)."""
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n])
    edit(header)
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    return blob[:8] + text.ljust(n, b" ") + blob[8 + n :]


def _retyped(header: dict[str, Any]) -> None:
    """A float32 ``[r, d]`` tensor declared as float16 ``[2r, d]``: the same bytes and offsets, so safetensors
    accepts the header, but other parameters and dtypes than push recorded."""
    name = next(k for k in sorted(header) if k.endswith("lora_A.weight"))
    r, d = header[name]["shape"]
    assert header[name]["dtype"] == "F32" and r == 4
    header[name]["dtype"], header[name]["shape"] = "F16", [2 * r, d]


def _bad_offsets(header: dict[str, Any]) -> None:
    name = next(k for k in sorted(header) if k != "__metadata__")
    start, end = header[name]["data_offsets"]
    header[name]["data_offsets"] = [start, end + 4]


CORRUPTIONS = {
    "length-past-the-end": (lambda b: _patched_length(b, len(b)), "more than the file's recorded"),
    "length-over-the-cap": (lambda b: _patched_length(b, 1 << 40), "over safetensors' limit"),
    "truncated": (lambda b: b[:5], "too short for the 8-byte safetensors header length"),
    "truncated-in-header": (lambda b: b[:40], "inside its"),
    "offsets": (lambda b: _altered_header(b, _bad_offsets), "that safetensors refuses"),
    "other-tensors": (lambda b: _altered_header(b, _retyped), "where push recorded"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupted_header_is_named_with_its_version_and_file(reg: Registry, llama, corruption: str) -> None:
    alter, expected = CORRUPTIONS[corruption]
    reg.push(llama.adapter, name="a", base=str(llama.base))
    weights = _weights(reg)
    overwrite_blob(reg, weights.sha256, alter(read_blob(reg, weights.sha256)))
    with pytest.raises(IntegrityError, match=expected) as caught:
        reg.verify("a", str(llama.base), mode="static")
    error = caught.value
    assert (error.name, error.version, error.path) == ("a", 1, "adapter_model.safetensors")
    assert str(error).startswith("a:1: adapter_model.safetensors") and weights.sha256 in str(error)
    assert reg.show("a").verifications == ()  # a verification that could not run records nothing


def test_a_corrupted_length_field_exits_1_naming_version_and_file(backend, llama) -> None:
    with Registry() as reg:
        reg.push(llama.adapter, name="a", base=str(llama.base))
        weights = _weights(reg)
        overwrite_blob(reg, weights.sha256, _patched_length(read_blob(reg, weights.sha256), 1 << 33))
    result = CliRunner().invoke(cli, ["verify", "a:1", "--base", str(llama.base), "--mode", "static"])
    assert result.exit_code == 1, result.output
    assert "a:1: adapter_model.safetensors" in result.stderr and "length field was altered" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda b: b.replace(b'"r": 4', b'"r": 5'), id="edited"),
        pytest.param(lambda b: b + b" ", id="longer"),
        pytest.param(lambda b: b[:-1], id="shorter"),
    ],
)
def test_a_corrupted_config_blob_is_an_integrity_error(reg: Registry, llama, alter: Any) -> None:
    reg.push(llama.adapter, name="a", base=str(llama.base))
    config = _config(reg)
    data = read_blob(reg, config.sha256)
    assert b'"r": 4' in data
    overwrite_blob(reg, config.sha256, alter(data))
    with pytest.raises(IntegrityError, match=r"adapter_config.json .* is corrupted") as caught:
        reg.verify("a", str(llama.base), mode="static")
    assert (caught.value.version, caught.value.path) == (1, "adapter_config.json")
    assert str(caught.value).startswith("a:1: adapter_config.json")


def test_a_missing_blob_is_named(reg: Registry, llama) -> None:
    from stores import remove_blob

    reg.push(llama.adapter, name="a", base=str(llama.base))
    remove_blob(reg, _weights(reg).sha256)
    with pytest.raises(IntegrityError, match=r"a:1: adapter_model.safetensors .* is missing"):
        reg.verify("a", str(llama.base), mode="static")


def test_static_verify_does_not_rehash_the_weights(reg: Registry, llama) -> None:
    """What static mode does not prove, as documented: flipped bytes in the tensor data pass it; a
    load (which exports and re-hashes every file) catches them."""
    reg.push(llama.adapter, name="a", base=str(llama.base))
    weights = _weights(reg)
    blob = bytearray(read_blob(reg, weights.sha256))
    blob[-1] ^= 0xFF
    overwrite_blob(reg, weights.sha256, bytes(blob))
    assert reg.verify("a", str(llama.base), mode="static").passed
    with pytest.raises(IntegrityError, match="is corrupted in the blob store"):
        reg.verify("a", str(llama.base), mode="load", device="cpu")
