"""Base models are fingerprinted by content: local directories, the Hugging Face cache, or name only."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from registry import Registry
from registry.basemodel import resolve_base
from registry.domain.canonical import listing_digest
from registry.filehashes import FileHashCache


def _expected_fingerprint(directory: Path, pattern: str = "*.safetensors") -> str:
    files = sorted(directory.rglob(pattern))
    return listing_digest(
        (p.relative_to(directory).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files
    )


def _fake_hub_cache(cache: Path, repo_id: str, source: Path, commit: str = "a" * 40, blob_name=None) -> Path:
    """Lay ``source``'s files out as huggingface_hub does: blobs named by sha256, snapshot symlinks, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in source.iterdir():
        data = f.read_bytes()
        name = (blob_name or (lambda d: hashlib.sha256(d).hexdigest()))(data)
        (repo / "blobs" / name).write_bytes(data)
        (snapshot / f.name).symlink_to(Path("../../blobs") / name)
    return snapshot


def test_local_directory_fingerprint_is_the_listing_of_its_safetensors(llama, tmp_path: Path) -> None:
    cache = FileHashCache(tmp_path / "cache")
    resolved = resolve_base(str(llama.base), None, cache)
    assert resolved.base.fingerprint == _expected_fingerprint(llama.base)
    assert resolved.base.source == "local" and resolved.base.files == 1
    assert resolved.base.name == str(llama.base.resolve())


def test_sharded_base_and_preference_for_safetensors(tmp_path: Path) -> None:
    d = tmp_path / "base"
    d.mkdir()
    for i in (1, 2, 3):
        (d / f"model-0000{i}-of-00003.safetensors").write_bytes(os.urandom(1000 + i))
    (d / "pytorch_model.bin").write_bytes(b"ignored when safetensors exist")
    (d / "config.json").write_text("{}")
    resolved = resolve_base(str(d), "v1", FileHashCache(None))
    assert resolved.base.fingerprint == _expected_fingerprint(d)
    assert resolved.base.files == 3 and resolved.base.revision == "v1"
    # without safetensors, the other weight formats are the weights (hashed, never loaded)
    for f in d.glob("*.safetensors"):
        f.unlink()
    assert resolve_base(str(d), None, FileHashCache(None)).base.fingerprint == _expected_fingerprint(d, "*.bin")


def test_hub_cache_id_uses_the_blob_names_and_records_the_commit(llama, tmp_path: Path) -> None:
    hub = Path(os.environ["HF_HUB_CACHE"])
    _fake_hub_cache(hub, "acme/tiny-llama", llama.base, commit="c" * 40)
    resolved = resolve_base("acme/tiny-llama", None, FileHashCache(None))
    assert resolved.base.source == "hf-cache"
    assert resolved.base.name == "acme/tiny-llama" and resolved.base.revision == "c" * 40
    # the same weights give the same fingerprint wherever they are
    assert resolved.base.fingerprint == _expected_fingerprint(llama.base)


def test_hub_cache_hashes_are_taken_from_blob_names_without_reading(llama, tmp_path: Path) -> None:
    hub = Path(os.environ["HF_HUB_CACHE"])
    fake = "f" * 64  # a blob whose name is not the hash of its bytes: only a reader would notice
    _fake_hub_cache(
        hub, "acme/named", llama.base, blob_name=lambda d: fake if len(d) > 1000 else hashlib.sha256(d).hexdigest()
    )
    resolved = resolve_base("acme/named", None, FileHashCache(None))
    assert resolved.base.fingerprint == listing_digest([("model.safetensors", fake)])


def test_a_snapshot_directory_given_as_a_path_is_recognised(llama, tmp_path: Path) -> None:
    snapshot = _fake_hub_cache(tmp_path / "hub", "acme/tiny", llama.base, commit="d" * 40)
    resolved = resolve_base(str(snapshot), None, FileHashCache(None))
    assert (resolved.base.name, resolved.base.revision, resolved.base.source) == ("acme/tiny", "d" * 40, "hf-cache")


def test_unknown_id_is_recorded_by_name_with_a_warning(reg: Registry, llama) -> None:
    result = reg.push(llama.adapter, name="a", base="meta-llama/Llama-3.1-8B", base_revision="main")
    assert result.base.fingerprint is None and result.base.source == "unresolved"
    assert any("recorded by name only" in w and "meta-llama/Llama-3.1-8B" in w for w in result.warnings)
    shown = reg.show("a").manifest.base
    assert (shown.name, shown.revision, shown.fingerprint) == ("meta-llama/Llama-3.1-8B", "main", None)


def test_file_hash_cache_is_keyed_on_path_size_and_mtime(tmp_path: Path) -> None:
    d = tmp_path / "base"
    d.mkdir()
    f = d / "model.safetensors"
    f.write_bytes(b"A" * 4096)
    cache = FileHashCache(tmp_path / "cache")
    first = resolve_base(str(d), None, cache).base.fingerprint
    st = f.stat()
    f.write_bytes(b"B" * 4096)  # same size; restore the mtime: the cache cannot tell
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert resolve_base(str(d), None, cache).base.fingerprint == first  # served from the cache
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert resolve_base(str(d), None, cache).base.fingerprint == _expected_fingerprint(d) != first


def test_without_base_the_config_name_is_used(reg: Registry, llama, tmp_path: Path) -> None:
    import json

    d = llama.copy_adapter(tmp_path / "a")
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(llama.base)
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    result = reg.push(d, name="a")
    assert result.base.fingerprint == _expected_fingerprint(llama.base)
    assert any("base_model_name_or_path" in w for w in result.warnings)
    cfg["base_model_name_or_path"] = "/home/someone/models/llama"  # a training machine's path
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    result = reg.push(d, name="a")
    assert result.base.name == "/home/someone/models/llama" and result.base.fingerprint is None


def test_base_moved_keeps_its_fingerprint(llama, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(llama.base, moved)
    cache = FileHashCache(None)
    assert (
        resolve_base(str(moved), None, cache).base.fingerprint
        == resolve_base(str(llama.base), None, cache).base.fingerprint
    )


@pytest.mark.parametrize("spec", ["./missing", "/abs/missing", "~/missing-model"])
def test_a_missing_path_is_an_error_not_a_hub_id(spec: str) -> None:
    from registry import NotFound

    with pytest.raises(NotFound, match="does not exist"):
        resolve_base(spec, None, FileHashCache(None))
