"""A base is named by its id and read from its directory; its fingerprint does not depend on where its
weights sit inside the directory named; a different base is told file by file; a base without weights is
refused unless the push says it is unverified."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from stores import blob_names

import tinymodels
from cli.main import cli
from registry import InvalidInput, InvalidMetadata, Registry
from registry.basemodel import resolve_base
from registry.domain.canonical import listing_digest
from registry.domain.compat import check_fingerprint, weights_difference
from registry.domain.versions import BaseModel, Manifest
from registry.filehashes import FileHashCache

LEGACY_DB = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-v1" / "home" / "registry.db"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# -- the base's identity ---------------------------------------------------------------------


def test_a_local_base_is_named_by_the_id_given_and_its_directory_kept(
    reg: Registry, llama: tinymodels.Tiny, tmp_path: Path
) -> None:
    result = reg.push(llama.adapter, name="a", base=str(llama.base), base_name="acme/tiny-llama")
    base = reg.show("a").manifest.base
    assert (base.name, base.path, base.source) == ("acme/tiny-llama", str(llama.base.resolve()), "local")
    assert base.weights == (("model.safetensors", _sha(llama.base / "model.safetensors")),)
    assert result.base == base and not any("--base-name" in w for w in result.warnings)
    assert [r.base for r in reg.ls()] == ["acme/tiny-llama"] and len(reg.ls(base="acme/tiny-llama")) == 1
    # verify and merge find the base by its recorded directory, and name it by its id
    report = reg.verify("a", mode="static")
    assert report.passed and report.base_name == "acme/tiny-llama"
    assert reg.merge("a", out=tmp_path / "merged").base_name == "acme/tiny-llama"


def test_the_base_name_comes_from_a_meta_file_too(sqlite_reg: Registry, llama: tinymodels.Tiny, tmp_path: Path) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text(f"base: {llama.base}\nbase_name: acme/from-meta\n")
    assert sqlite_reg.push(llama.adapter, name="a", meta=meta).base.name == "acme/from-meta"
    assert sqlite_reg.push(llama.adapter, name="a", meta=meta, base_name="acme/flag").base.name == "acme/flag"


def test_a_local_base_takes_the_hub_id_of_the_adapter_config(
    sqlite_reg: Registry, llama: tinymodels.Tiny, tmp_path: Path
) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    config = json.loads((d / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "acme/tiny-llama"
    (d / "adapter_config.json").write_text(json.dumps(config))
    result = sqlite_reg.push(d, name="a", base=str(llama.base))
    assert (result.base.name, result.base.path) == ("acme/tiny-llama", str(llama.base.resolve()))
    assert any("base_model_name_or_path" in w and "--base-name" in w for w in result.warnings)


def test_the_base_configs_name_or_path_is_not_taken_as_its_id(
    sqlite_reg: Registry, llama: tinymodels.Tiny, tmp_path: Path
) -> None:
    # all-MiniLM-L6-v2's config.json says nreimers/MiniLM-L6-H384-uncased: the model it was fine-tuned from
    base = tmp_path / "minilm"
    shutil.copytree(llama.base, base)
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    result = sqlite_reg.push(llama.adapter, name="a", base=str(base))  # its config names a path
    assert result.base.name == result.base.path == str(base.resolve())
    assert any("named by its path" in w and "--base-name" in w for w in result.warnings)


def test_push_base_name_on_the_command_line(backend: object, llama: tinymodels.Tiny) -> None:
    args = ("push", str(llama.adapter), "--name", "a", "--base", str(llama.base), "--base-name", "acme/tiny")
    pushed = _run(*args, "--json")
    assert pushed.exit_code == 0, pushed.stderr  # type: ignore[attr-defined]
    assert json.loads(pushed.stdout)["base"]["name"] == "acme/tiny"  # type: ignore[attr-defined]
    shown = json.loads(_run("show", "a", "--json").stdout)  # type: ignore[attr-defined]
    assert shown["base"]["name"] == "acme/tiny" and shown["base"]["path"] == str(llama.base.resolve())
    assert shown["base"]["weights"] == [{"path": "model.safetensors", "sha256": _sha(llama.base / "model.safetensors")}]
    assert json.loads(_run("ls", "--json").stdout)[0]["base"] == "acme/tiny"  # type: ignore[attr-defined]
    human = _run("show", "a").stdout  # type: ignore[attr-defined]
    assert "acme/tiny" in human and str(llama.base.resolve()) in human


def test_manifests_written_before_the_new_base_fields_read_back_byte_for_byte(tmp_path: Path) -> None:
    shutil.copy(LEGACY_DB, tmp_path / "registry.db")  # opening it would leave -wal/-shm files in the fixture
    db = sqlite3.connect(tmp_path / "registry.db")
    try:
        stored = [row[0] for row in db.execute("SELECT manifest FROM versions")]
    finally:
        db.close()
    assert stored
    for text in stored:
        assert "path" not in json.loads(text)["base"]
        assert Manifest.from_json(text).canonical().decode("utf-8") == text


# -- the fingerprint, wherever the weights sit -------------------------------------------------


def test_the_same_weights_one_directory_deeper_fingerprint_alike(llama: tinymodels.Tiny, tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    shutil.copytree(llama.base, parent / "base")
    (parent / "README.md").write_text("a model")
    cache = FileHashCache(None)
    top, deeper = resolve_base(str(llama.base), None, cache), resolve_base(str(parent), None, cache)
    sha = _sha(llama.base / "model.safetensors")
    assert top.base.fingerprint == listing_digest([("model.safetensors", sha)])  # exactly as before
    assert deeper.base.fingerprint == top.base.fingerprint and deeper.weights_dir == (parent / "base").resolve()
    # a version recorded by an earlier release, which listed base/model.safetensors, still matches
    assert deeper.also_known_as == (listing_digest([("base/model.safetensors", sha)]),)
    earlier = BaseModel(fingerprint=deeper.also_known_as[0])
    assert check_fingerprint(earlier, deeper.base, False, deeper.also_known_as).passed is True


def test_a_base_one_directory_deeper_verifies_and_merges(
    sqlite_reg: Registry, llama: tinymodels.Tiny, tmp_path: Path
) -> None:
    parent = tmp_path / "parent"
    shutil.copytree(llama.base, parent / "base")
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    report = sqlite_reg.verify("a", str(parent), mode="static")
    assert report.passed, report.failures
    result = sqlite_reg.merge("a", out=tmp_path / "merged", base=str(parent))
    assert "base/model.safetensors" in {f.path for f in result.files}
    sqlite_reg.merge("a", out=tmp_path / "direct", base=str(llama.base))
    assert _sha(tmp_path / "merged" / "base" / "model.safetensors") == _sha(tmp_path / "direct" / "model.safetensors")
    tinymodels.load_base("llama", tmp_path / "merged" / "base")  # a model directory, where it was in the base


# -- a different base, file by file ------------------------------------------------------------


def _sharded_base(directory: Path) -> Path:
    tinymodels.build_model("llama", seed=2).save_pretrained(str(directory), max_shard_size="100KB")
    return directory


def test_a_different_base_is_told_file_by_file(sqlite_reg: Registry, tmp_path: Path) -> None:
    base = _sharded_base(tmp_path / "base")
    adapter = tinymodels.make_adapter("llama", base, tmp_path / "adapter")
    sqlite_reg.push(adapter, name="a", base=str(base))
    other = tmp_path / "other"
    shutil.copytree(base, other)
    shards = sorted(p.name for p in other.glob("model-*.safetensors"))
    tensors = load_file(str(other / shards[1]))
    save_file({k: v + 1 for k, v in tensors.items()}, str(other / shards[1]), metadata={"format": "pt"})
    (other / shards[-1]).unlink()
    save_file({"extra.weight": torch.zeros(2)}, str(other / "extra.safetensors"))
    expected = [f"changed: {shards[1]}", f"removed: {shards[-1]}", "added: extra.safetensors"]
    report = sqlite_reg.verify("a", str(other), mode="static")
    check = next(c for c in report.checks if c.name == "base-fingerprint")
    assert check.passed is False and list(check.details) == expected
    assert all(line in check.message for line in expected)
    with pytest.raises(InvalidInput) as refused:
        sqlite_reg.merge("a", out=tmp_path / "merged", base=str(other))
    assert "not the ones a:1 was trained on" in str(refused.value)
    assert all(line in str(refused.value) for line in expected)


def test_without_both_weight_lists_no_files_are_named() -> None:
    assert weights_difference(None, (("a.safetensors", "0" * 64),)) == ()
    check = check_fingerprint(
        BaseModel(fingerprint="sha256:" + "1" * 64), BaseModel(fingerprint="sha256:" + "2" * 64), False
    )
    assert check.passed is False and check.details == () and "weight files" not in check.message


# -- a base without weights --------------------------------------------------------------------


def _weightless_base(tmp_path: Path, llama: tinymodels.Tiny) -> Path:
    base = tmp_path / "configs-only"
    base.mkdir()
    shutil.copy(llama.base / "config.json", base / "config.json")
    return base


def test_a_base_directory_without_weights_is_refused(reg: Registry, llama: tinymodels.Tiny, tmp_path: Path) -> None:
    base = _weightless_base(tmp_path, llama)
    with pytest.raises(InvalidMetadata, match=r"no weight files .*nothing was stored.*--allow-unverified-base"):
        reg.push(llama.adapter, name="a", base=str(base))
    assert reg.ls() == []
    assert blob_names(reg) == set()


def test_an_unverified_base_is_pushed_when_allowed_and_shown(
    backend: object, llama: tinymodels.Tiny, tmp_path: Path
) -> None:
    base = _weightless_base(tmp_path, llama)
    refused = _run("push", str(llama.adapter), "--name", "a", "--base", str(base))
    assert refused.exit_code == 1 and "--allow-unverified-base" in refused.stderr  # type: ignore[attr-defined]
    assert json.loads(_run("ls", "--json").stdout) == []  # type: ignore[attr-defined]
    pushed = _run("push", str(llama.adapter), "--name", "a", "--base", str(base), "--allow-unverified-base")
    assert pushed.exit_code == 0 and "marked unverified" in pushed.stderr  # type: ignore[attr-defined]
    shown = json.loads(_run("show", "a", "--json").stdout)  # type: ignore[attr-defined]
    assert shown["base"]["unverified"] is True and shown["base"]["fingerprint"] is None
    assert "UNVERIFIED" in _run("show", "a").stdout  # type: ignore[attr-defined]
    with Registry() as reg:
        assert (
            reg.push(llama.adapter, name="b", base=str(llama.base), allow_unverified_base=True).base.unverified is False
        )
