"""fsck, as a library and as a command, on SQLite, PostgreSQL and S3: what it finds (each kind of damage,
one finding per blob naming every version and file using it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from attacker import Attacker
from click.testing import CliRunner
from stores import is_s3, overwrite_blob, read_blob, remove_blob

from cli.main import cli
from registry import Registry
from registry.domain.canonical import canonical_json, sha256_digest

WEIGHTS = "adapter_model.safetensors"


def run(*args: str, user: str | None = None) -> Any:
    env = {"ADAPTERS_USER": user} if user else None
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def shared(reg: Registry, llama) -> Registry:
    """a:1 and b:1, the same adapter under two names: every blob is used by both."""
    reg.push(llama.adapter, name="a", base=str(llama.base))
    reg.push(llama.adapter, name="b", base=str(llama.base))
    return reg


def _orphan(reg: Registry, tmp_path: Path, data: bytes) -> str:
    """A blob no version references, as a push that crashed before recording its version leaves."""
    path = tmp_path / f"orphan-{sha256_digest(data)[7:19]}"
    path.write_bytes(data)
    return reg._blobs.put(path).sha256


def _sha(reg: Registry, ref: str, path: str = WEIGHTS) -> str:
    return next(f.sha256 for f in reg.show(ref).manifest.files if f.path == path)


# -- fsck --------------------------------------------------------------------------------------------


def test_fsck_of_a_sound_registry_is_clean(shared: Registry, tmp_path: Path) -> None:
    _orphan(shared, tmp_path, b"left by a crashed push")
    for quick in (True, False):
        result = shared.fsck(quick=quick)
        assert result.ok, (result.blob_problems, result.version_problems)
        assert result.mode == ("quick" if quick else "full")
        files = len(shared.show("a:1").manifest.files)
        assert (result.versions, result.blobs, result.files) == (2, files, 2 * files)
        assert result.bytes == shared.show("a:1").manifest.size
        assert (result.unreferenced, result.unreferenced_bytes) == (1, len(b"left by a crashed push"))
    cli_result = run("fsck", "--json")
    assert cli_result.exit_code == 0, cli_result.output
    data = json.loads(cli_result.stdout)
    assert data["ok"] is True and data["mode"] == "full" and data["checked"]["versions"] == 2
    assert data["unreferenced"] == {"blobs": 1, "bytes": len(b"left by a crashed push")}
    assert data["problems"] == {"blobs": [], "versions": []}
    human = run("fsck", "--quick")
    assert human.exit_code == 0 and "store intact" in human.stdout and "1 unreferenced blob" in human.stdout


def test_fsck_on_s3_lists_the_store_instead_of_asking_per_blob(shared: Registry) -> None:
    quick, full = shared.fsck(quick=True), shared.fsck()
    if not is_s3(shared):
        assert quick.requests is None and full.requests is None
        return
    assert quick.requests == 1  # one LIST page for the whole store, not one HEAD per blob
    assert full.requests == 1 + quick.blobs  # and each shared blob is read once, not once per version


def test_a_missing_blob_is_one_finding_naming_every_version_and_file(shared: Registry) -> None:
    target = _sha(shared, "a:1")
    remove_blob(shared, target)
    for quick in (True, False):
        result = shared.fsck(quick=quick)
        assert not result.ok and result.version_problems == ()
        [problem] = result.blob_problems
        assert (problem.kind, problem.sha256, problem.stored_size) == ("blob-missing", target, None)
        assert [str(u) for u in problem.uses] == [f"a:1: {WEIGHTS}", f"b:1: {WEIGHTS}"]
    cli_result = run("fsck", "--quick", "--json")
    assert cli_result.exit_code == 3
    [found] = json.loads(cli_result.stdout)["problems"]["blobs"]
    assert found["kind"] == "blob-missing" and found["sha256"] == target
    assert [(u["ref"], u["path"]) for u in found["uses"]] == [("a:1", WEIGHTS), ("b:1", WEIGHTS)]
    human = run("fsck")
    assert human.exit_code == 3 and "STORE DAMAGED" in human.stdout and target[:12] in human.stdout
    assert f"a:1: {WEIGHTS}" in human.stdout


def test_a_blob_of_another_size_is_found_by_both_checks(shared: Registry) -> None:
    target, config = _sha(shared, "a:1"), _sha(shared, "a:1", "adapter_config.json")
    overwrite_blob(shared, target, read_blob(shared, config))  # other bytes swapped in under its name
    for quick in (True, False):
        [problem] = shared.fsck(quick=quick).blob_problems
        assert problem.kind == "blob-size" and problem.sha256 == target
        assert problem.stored_size == len(read_blob(shared, config)) != problem.size
    assert run("fsck", "--quick").exit_code == 3


def test_same_size_corruption_is_found_only_by_the_full_check(shared: Registry) -> None:
    target = _sha(shared, "b:1")
    data = bytearray(read_blob(shared, target))
    data[-1] ^= 0xFF
    overwrite_blob(shared, target, bytes(data))
    assert shared.fsck(quick=True).ok
    [problem] = shared.fsck().blob_problems
    assert problem.kind == "blob-corrupted" and problem.sha256 == target and len(problem.uses) == 2
    assert "no longer hashes to its name" in problem.message
    assert run("fsck", "--quick").exit_code == 0
    assert run("fsck").exit_code == 3
    # audit verify --blobs reports it from the same check, one finding per blob
    [finding] = shared.audit_verify(blobs="full").findings
    assert finding.kind == "blob-corrupted" and f"a:1: {WEIGHTS}" in finding.message


def _point_weights_at_the_config(attacker: Attacker, row: dict[str, Any]) -> None:
    """Rewrite a version to name its config's blob as its weights, with its digest recomputed."""
    manifest = json.loads(row["manifest"])
    config = next(f for f in manifest["files"] if f["path"] == "adapter_config.json")
    manifest["files"] = [{**config, "path": f["path"]} if f["path"] == WEIGHTS else f for f in manifest["files"]]
    text = canonical_json(manifest).decode("utf-8")
    attacker.execute("UPDATE versions SET manifest = ?, digest = ? WHERE id = ?",
                     (text, sha256_digest(text.encode()), row["id"]))  # fmt: skip


def test_an_edited_manifest_and_a_replaced_version_are_found(shared: Registry) -> None:
    attacker = Attacker(shared)
    a, b = attacker.rows("SELECT * FROM versions ORDER BY id")
    # a:1's manifest edited in place: it no longer hashes to its digest
    edited = {**json.loads(a["manifest"]), "created_by": "mallory"}
    attacker.execute("UPDATE versions SET manifest = ? WHERE id = ?", (canonical_json(edited).decode(), a["id"]))
    # b:1 pointed at other bytes, its digest recomputed: only its push event shows the difference
    _point_weights_at_the_config(attacker, b)
    result = shared.fsck(quick=True)
    kinds = {(p.kind, p.ref) for p in result.version_problems}
    assert kinds == {("manifest-edited", "a:1"), ("version-changed", "b:1"), ("version-files-changed", "b:1")}
    assert result.blob_problems == ()
    cli_result = run("fsck", "--quick", "--json")
    assert cli_result.exit_code == 3
    assert {p["ref"] for p in json.loads(cli_result.stdout)["problems"]["versions"]} == {"a:1", "b:1"}
