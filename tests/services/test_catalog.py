"""push / pull / ls / show, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from stores import blob_names, overwrite_blob, read_blob

import tinymodels
from registry import (
    AmbiguousReference,
    DestinationExists,
    IntegrityError,
    NotFound,
    Registry,
)
from registry.domain.adapterdir import PROVENANCE_FILE
from registry.domain.canonical import sha256_digest
from tamper import tampering


def _blob_files(reg: Registry) -> list[str]:
    return sorted(blob_names(reg))


def test_push_records_every_fact(reg: Registry, llama, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}\n')
    result = reg.push(
        llama.adapter,
        name="support-summarizer",
        base=str(llama.base),
        quantization="nf4",
        datasets=[f"name=tickets,license=mit,split=train,path={data}", {"name": "chats", "uri": "hf://x/chats"}],
        evals={"accuracy": 0.91},
        training={"lr": 2e-4, "epochs": 3},
        description="first",
    )
    assert (result.name, result.version) == ("support-summarizer", 1)
    assert result.digest.startswith("sha256:") and len(result.digest) == 71

    info = reg.show("support-summarizer:1")
    d = info.to_dict()
    assert d["digest"] == result.digest
    assert d["state"] == "draft"
    assert d["created_by"] == "tester"
    assert d["peft"]["type"] == "LORA" and d["peft"]["r"] == 4 and d["peft"]["lora_alpha"] == 8
    assert d["quantization"]["method"] == "nf4"
    assert d["base"]["name"] == str(llama.base.resolve())
    assert d["base"]["fingerprint"].startswith("sha256:")
    tickets = next(x for x in d["datasets"] if x["name"] == "tickets")
    assert tickets["rows"] == 3  # blank line not counted
    assert tickets["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert tickets["license"] == "mit"
    assert [(e["metric"], e["value"], e["source"]) for e in d["evals"]] == [("accuracy", 0.91, "push")]
    assert d["training"] == {"lr": 2e-4, "epochs": 3}
    # every file is listed with the sha256 of its bytes on disk
    for f in d["files"]:
        assert f["sha256"] == hashlib.sha256((llama.adapter / f["path"]).read_bytes()).hexdigest()
        assert f["size"] == (llama.adapter / f["path"]).stat().st_size


def test_versions_count_up_and_identical_bytes_are_stored_once(reg: Registry, llama) -> None:
    first = reg.push(llama.adapter, name="a")
    blobs_after_first = _blob_files(reg)
    second = reg.push(llama.adapter, name="a", description="same files, new version")
    assert second.version == 2
    assert second.digest != first.digest  # the digest pins the version, not only the bytes
    assert second.new_bytes == 0 and first.new_bytes == first.size
    assert _blob_files(reg) == blobs_after_first
    # every blob's name is the sha256 of its bytes
    for blob in blobs_after_first:
        assert hashlib.sha256(read_blob(reg, blob)).hexdigest() == blob


def test_digest_is_the_sha256_of_the_stored_canonical_manifest(reg: Registry, llama) -> None:
    result = reg.push(llama.adapter, name="a")
    with reg._db.read() as s:
        manifest = s.execute(text("SELECT manifest FROM versions")).scalar_one()
    assert sha256_digest(manifest.encode()) == result.digest
    assert json.loads(manifest)["files"] == reg.show("a").to_dict()["files"]


def test_references_resolve(reg: Registry, llama) -> None:
    r1 = reg.push(llama.adapter, name="team/a")
    r2 = reg.push(llama.adapter, name="team/a")
    assert reg.show("team/a").version == 2  # NAME is the latest
    assert reg.show("team/a:1").digest == r1.digest
    assert reg.show(f"team/a@{r2.digest[:19]}").version == 2  # sha256: + 12 hex
    with pytest.raises(NotFound, match=r"has no version 7; versions are 1-2 \(adapters ls team/a\)"):
        reg.show("team/a:7")
    with pytest.raises(NotFound, match="adapters ls"):
        reg.show("nope")
    with pytest.raises(NotFound, match="no version with digest"):
        reg.show("team/a@sha256:000000000000")
    with pytest.raises(NotFound, match="no channel 'production'"):
        reg.show("team/a@production")


def test_an_ambiguous_digest_prefix_lists_the_candidates(reg: Registry, llama) -> None:
    reg.push(llama.adapter, name="a")
    reg.push(llama.adapter, name="a")
    # Real digests never share 12 hex digits; forge two that do to check the refusal.
    with tampering(reg) as s:
        s.execute(text("UPDATE versions SET digest = 'sha256:abcdefabcdef' || substr(digest, 20)"))
    with pytest.raises(AmbiguousReference, match="matches 2 versions"):
        reg.show("a@sha256:abcdefabcdef")


def test_pull_writes_a_verified_directory_with_provenance(reg: Registry, llama, tmp_path: Path) -> None:
    pushed = reg.push(llama.adapter, name="a")
    out = tmp_path / "out"
    result = reg.pull("a", out)
    assert result.digest == pushed.digest and result.path == out
    for f in result.files:
        assert (out / f.path).read_bytes() == (llama.adapter / f.path).read_bytes()
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    assert prov["ref"] == "a" and prov["version"] == 1 and prov["digest"] == pushed.digest
    assert prov["registry"]["store"] == reg._blobs.url
    assert "password" not in json.dumps(prov)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp sibling left


def test_pull_refuses_a_non_empty_directory_unless_forced(reg: Registry, llama, tmp_path: Path) -> None:
    reg.push(llama.adapter, name="a")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(DestinationExists, match="--force"):
        reg.pull("a", out)
    assert (out / "mine.txt").read_text() == "keep me"
    reg.pull("a", out, force=True)
    assert not (out / "mine.txt").exists() and (out / "adapter_model.safetensors").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    reg.pull("a", empty)  # an empty directory is fine
    assert (empty / "adapter_config.json").exists()


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("link_to", ["full-dir", "empty-dir", "dangling"])
def test_pull_refuses_a_symlink_destination(reg: Registry, llama, tmp_path: Path, link_to: str, force: bool) -> None:
    reg.push(llama.adapter, name="a")
    elsewhere = tmp_path / "elsewhere"
    if link_to != "dangling":
        elsewhere.mkdir()
    if link_to == "full-dir":
        (elsewhere / "precious.txt").write_text("keep me")
    link = tmp_path / "out"
    link.symlink_to(elsewhere)
    with pytest.raises(DestinationExists, match=r"out is a symbolic link .*elsewhere.*give the real directory") as exc:
        reg.pull("a", link, force=force)
    assert exc.value.path == str(link)
    assert link.is_symlink() and os.readlink(link) == str(elsewhere)
    if link_to == "dangling":
        assert not elsewhere.exists()
    else:
        assert [p.name for p in elsewhere.iterdir()] == (["precious.txt"] if link_to == "full-dir" else [])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary sibling left


@pytest.mark.parametrize("force", [False, True])
def test_pull_onto_a_file_says_it_is_a_file(reg: Registry, llama, tmp_path: Path, force: bool) -> None:
    reg.push(llama.adapter, name="a")
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    with pytest.raises(DestinationExists, match=r"notes\.txt is a file, not a directory") as exc:
        reg.pull("a", out, force=force)
    assert "not empty" not in str(exc.value)
    assert out.read_text() == "mine"


def test_publishing_over_a_symlink_is_refused_even_if_it_appeared_after_the_check(tmp_path: Path) -> None:
    from registry._io import publish_dir

    tmp = tmp_path / ".out.tmp"
    tmp.mkdir()
    (tmp / "f").write_text("x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    (tmp_path / "out").symlink_to(elsewhere)
    with pytest.raises(DestinationExists, match="symbolic link"):
        publish_dir(tmp, tmp_path / "out")
    assert [p.name for p in elsewhere.iterdir()] == ["precious.txt"] and (tmp / "f").exists()


def test_a_corrupted_blob_fails_the_pull_and_writes_nothing(reg: Registry, llama, tmp_path: Path) -> None:
    reg.push(llama.adapter, name="a")
    weights = next(f for f in reg.show("a:1").manifest.files if f.path == "adapter_model.safetensors")
    data = bytearray(read_blob(reg, weights.sha256))
    data[len(data) // 2] ^= 0xFF
    overwrite_blob(reg, weights.sha256, bytes(data))

    pulls = tmp_path / "pulls"
    pulls.mkdir()
    out = pulls / "out"
    with pytest.raises(IntegrityError) as exc:
        reg.pull("a:1", out)
    assert "a:1" in str(exc.value) and "adapter_model.safetensors" in str(exc.value)
    assert "nothing was written" in str(exc.value)
    assert not out.exists()
    assert list(pulls.iterdir()) == []  # no temporary sibling either

    # with --force over an existing directory, the old content survives the failed pull
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(IntegrityError):
        reg.pull("a:1", out, force=True)
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_an_edited_record_is_detected(reg: Registry, llama, tmp_path: Path) -> None:
    reg.push(llama.adapter, name="a")
    with tampering(reg) as s:
        s.execute(
            text("UPDATE versions SET manifest = replace(manifest, :old, :new)"), {"old": '"r":4', "new": '"r":64'}
        )
    with pytest.raises(IntegrityError, match="no longer matches its digest"):
        reg.show("a")
    with pytest.raises(IntegrityError):
        reg.pull("a", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ls_filters(reg: Registry, tiny_models, tmp_path: Path) -> None:
    llama, gpt2 = tiny_models["llama"], tiny_models["gpt2"]
    big = tinymodels.make_adapter("llama", llama.base, tmp_path / "big", r=16, lora_alpha=32)
    reg.push(llama.adapter, name="support/summarizer", base=str(llama.base), quantization="nf4")
    reg.push(big, name="support/summarizer", base=str(llama.base))
    reg.push(gpt2.adapter, name="chat-gpt2", base=str(gpt2.base))
    reg.push(llama.adapter, name="supportive", base=str(llama.base))

    def refs(**kw: object) -> list[str]:
        return [r.ref for r in reg.ls(**kw)]  # type: ignore[arg-type]

    assert refs() == ["chat-gpt2:1", "support/summarizer:1", "support/summarizer:2", "supportive:1"]
    assert refs(pattern="support") == ["support/summarizer:1", "support/summarizer:2"]  # a namespace
    assert refs(pattern="support*") == ["support/summarizer:1", "support/summarizer:2", "supportive:1"]
    assert refs(pattern="chat-gpt?") == ["chat-gpt2:1"]
    assert refs(min_rank=8) == ["support/summarizer:2"]
    assert refs(max_rank=4) == ["chat-gpt2:1", "support/summarizer:1", "supportive:1"]
    assert refs(quantization="nf4") == ["support/summarizer:1"]
    assert refs(peft_type="lora") == refs()
    assert refs(peft_type="IA3") == []
    assert refs(base=str(gpt2.base.resolve())) == ["chat-gpt2:1"]
    fingerprint = reg.show("chat-gpt2").manifest.base.fingerprint
    assert refs(base=fingerprint[:19]) == ["chat-gpt2:1"]
    assert refs(latest=True) == ["chat-gpt2:1", "support/summarizer:2", "supportive:1"]
    row = reg.ls(pattern="chat-gpt2")[0].to_dict()
    assert set(row) >= {
        "name",
        "version",
        "digest",
        "state",
        "created_at",
        "peft_type",
        "r",
        "base",
        "quantization",
        "size",
    }


def test_parent_is_resolved_to_a_digest(reg: Registry, llama) -> None:
    first = reg.push(llama.adapter, name="a")
    second = reg.push(llama.adapter, name="b", parent="a:1")
    parent = reg.show("b").manifest.parent
    assert parent is not None and (parent.name, parent.version, parent.digest) == ("a", 1, first.digest)
    assert second.version == 1
    with pytest.raises(NotFound):
        reg.push(llama.adapter, name="c", parent="a:9")
    assert reg.ls(pattern="c") == []


_GROWING = ("adapters", "versions", "evals", "verifications", "probe_references", "transitions", "approvals",
            "channel_moves", "audit_events")  # fmt: skip


def test_show_reads_only_the_records_of_the_version_asked_for(sqlite_reg: Registry, llama) -> None:
    """`show` costs the same in a registry of ten versions or a million: no query it makes scans a table
    that grows with the registry (SQLite's query plan says SEARCH, using an index, for each)."""
    from sqlalchemy import event

    reg = sqlite_reg
    for _ in range(3):
        ref = reg.push(llama.adapter, name="a", base=str(llama.base)).ref
        reg.review(ref)
    reg.approve("a:2")
    reg.release("a:2", channel="production")
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = reg._db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        info = reg.show("a:2")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert info.state == "released" and info.channels == ("production",)
    scans = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            for row in plan:
                detail = row[-1]
                if detail.startswith("SCAN") and any(f" {t}" in f" {detail.split()[1]}" for t in _GROWING):
                    scans.append(f"{detail}  <-  {statement.split('FROM')[1][:80]}")
    assert scans == []


def test_the_actor_comes_with_each_call_and_the_clock_is_injected(tmp_path: Path, llama) -> None:
    """One registry object acts for several users (acting_as), and records carry the injected clock's time."""
    from registry import Actor, InvalidInput

    ticks = iter(f"2030-01-01T00:00:{s:02d}.000000Z" for s in range(60))
    with Registry(tmp_path / "home", user="alice", clock=lambda: next(ticks)) as reg:
        reg.add_user("bob", roles=["author"])
        bob = reg.acting_as(Actor("bob"))
        pushed = bob.push(llama.adapter, name="a", base=str(llama.base))
        info = reg.show(pushed.ref)
        assert (info.manifest.created_by, info.manifest.created_at[:4]) == ("bob", "2030")
        assert reg.user == "alice" and bob.user == "bob"
        assert [(e.actor, e.action) for e in reg.audit_log()] == [
            ("alice", "user bootstrap"), ("alice", "user add"), ("bob", "push"),
        ]  # fmt: skip
        assert all(e.at.startswith("2030-01-01") for e in reg.audit_log())
    with pytest.raises(InvalidInput, match="control characters"):
        Actor("mallory\nadmin")
