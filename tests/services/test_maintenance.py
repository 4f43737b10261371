"""fsck and gc, as a library and as commands, on SQLite, PostgreSQL and S3: what fsck finds (each kind of
damage, one finding per blob naming every version and file using it), what gc removes and keeps, that gc
never races a push (driven through its two phases and through a real push), and its permission,
signature and audit event."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from attacker import Attacker
from click.testing import CliRunner
from stores import blob_names, is_s3, overwrite_blob, read_blob, remove_blob

from cli.main import cli
from registry import IntegrityError, InvalidInput, PermissionDenied, PolicyNotMet, Registry, Settings
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.clock import format_iso
from registry.storage.blobs import open_blob_store

WEIGHTS = "adapter_model.safetensors"


def run(*args: str, user: str | None = None) -> Any:
    env = {"ADAPTERS_USER": user} if user else None
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def later(days: float = 2) -> Callable[[], str]:
    """A clock ``days`` ahead: to gc, everything in the store is that much older (on S3 too, where an
    object's LastModified cannot be set)."""
    return lambda: format_iso(datetime.now(timezone.utc) + timedelta(days=days))


@pytest.fixture
def shared(reg: Registry, llama) -> Registry:
    """a:1 and b:1, the same adapter under two names: every blob is used by both."""
    reg.push(llama.adapter, name="a", base=str(llama.base))
    reg.push(llama.adapter, name="b", base=str(llama.base))
    return reg


@pytest.fixture
def aged(backend) -> Iterator[Registry]:
    """The same registry two days later (its clock), acting as the same admin."""
    with Registry(clock=later()) as r:
        yield r


def _orphan(reg: Registry, tmp_path: Path, data: bytes) -> str:
    """A blob no version references, as a push that crashed before recording its version leaves."""
    path = tmp_path / f"orphan-{sha256_digest(data)[7:19]}"
    path.write_bytes(data)
    return reg._blobs.put(path).sha256


def _sha(reg: Registry, ref: str, path: str = WEIGHTS) -> str:
    return next(f.sha256 for f in reg.show(ref).manifest.files if f.path == path)


def _pull_all(reg: Registry, tmp_path: Path) -> None:
    for i, v in enumerate(reg.ls()):
        reg.pull(v.ref, tmp_path / f"pulled-{i}")


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


# -- gc ------------------------------------------------------------------------------------------------


def test_gc_removes_old_orphans_and_keeps_referenced_and_young_blobs(
    shared: Registry, aged: Registry, tmp_path: Path
) -> None:
    orphans = {_orphan(shared, tmp_path, data): len(data) for data in (b"one crashed push", b"and another")}
    referenced = blob_names(shared) - set(orphans)
    young = shared.gc()  # default grace: 24 hours; everything here was written just now
    assert young.blobs == () and young.young == young.listed == len(referenced) + 2 and young.event is None
    assert blob_names(shared) == referenced | set(orphans)

    result = aged.gc()  # two days later
    assert {b.sha256: b.size for b in result.blobs} == orphans
    assert result.bytes_freed == sum(orphans.values()) and result.referenced == len(referenced)
    assert blob_names(shared) == referenced
    event = shared.audit_log()[-1]
    assert (event.seq, event.action, event.subject) == (result.event, "gc", "blob store")
    assert sorted(event.data["deleted"]) == sorted(orphans) and event.data["bytes"] == sum(orphans.values())
    assert event.data["grace"] == "24h"
    # the registry is sound afterwards: fsck is clean, every version pulls, the chain verifies
    assert shared.fsck().ok and shared.fsck().unreferenced == 0
    _pull_all(shared, tmp_path)
    assert shared.audit_verify(blobs="full").ok, shared.audit_verify().findings
    assert json.loads(shared.audit_report(format="json").content)["integrity"]["ok"] is True
    # nothing left to remove: nothing is recorded
    assert aged.gc().event is None and shared.audit_log()[-1].seq == result.event


def test_a_dry_run_removes_and_records_nothing(shared: Registry, aged: Registry, tmp_path: Path) -> None:
    orphan = _orphan(shared, tmp_path, b"orphaned bytes")
    events = len(shared.audit_log())
    before = blob_names(shared)
    result = aged.gc(dry_run=True)
    assert result.dry_run and [b.sha256 for b in result.blobs] == [orphan] and result.event is None
    assert result.bytes_freed == len(b"orphaned bytes")
    assert blob_names(shared) == before and len(shared.audit_log()) == events
    assert aged.gc().blobs == result.blobs  # what the dry run said is what a run removes


def test_gc_with_no_grace(shared: Registry, tmp_path: Path) -> None:
    orphan = _orphan(shared, tmp_path, b"just written")
    time.sleep(1.1)  # object stores time objects to the second
    assert [b.sha256 for b in shared.gc(grace="0s").blobs] == [orphan]
    assert shared.fsck().ok


def test_gc_removes_abandoned_uploads(shared: Registry, aged: Registry) -> None:
    store = shared._blobs
    if is_s3(shared):
        import boto3

        client = boto3.client("s3")
        key = store.prefix + "sha256/ab/" + "ab" * 32
        upload = client.create_multipart_upload(Bucket=store.bucket, Key=key)["UploadId"]
        client.upload_part(Bucket=store.bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1000)

        def pending() -> list[str]:
            return [u["UploadId"] for u in client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
    else:
        leftover = store.root / "tmp" / "4242.another-host.0123456789ab.incomplete"
        leftover.write_bytes(b"x" * 1000)

        def pending() -> list[str]:
            return [p.name for p in (store.root / "tmp").iterdir()]

    assert len(pending()) == 1
    if not is_s3(shared):  # moto dates every multipart upload 2010-11-10, so only a directory shows this
        assert shared.gc().uploads == ()  # begun just now: within the grace period
    result = aged.gc()
    expected = "sha256/ab/" + "ab" * 32 if is_s3(shared) else "tmp/4242.another-host.0123456789ab.incomplete"
    assert [(u.key, u.size) for u in result.uploads] == [(expected, 1000)]
    assert result.bytes_freed == 1000 and result.blobs == ()
    assert pending() == []
    assert shared.audit_log()[-1].data["uploads"] == 1


def test_gc_command(shared: Registry, tmp_path: Path) -> None:
    orphan = _orphan(shared, tmp_path, b"orphan for the command")
    time.sleep(1.1)
    dry = run("gc", "--grace", "0s", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.stdout)
    assert data["dry_run"] is True and [b["sha256"] for b in data["blobs"]] == [orphan] and data["event"] is None
    assert data["grace"] == "0s" and data["bytes_freed"] == len(b"orphan for the command")
    assert orphan in blob_names(shared)
    human = run("gc", "--grace", "0s")
    assert human.exit_code == 0 and "removed 1 unreferenced blob" in human.stdout and orphan[:12] in human.stdout
    assert orphan not in blob_names(shared)
    log = json.loads(run("audit", "log", "--json").stdout)
    assert log[-1]["action"] == "gc" and log[-1]["payload"]["deleted"] == [orphan]
    assert run("audit", "verify").exit_code == 0
    for bad in ("soon", "24", "-1h", "1.5h"):
        refused = run("gc", "--grace", bad)
        assert refused.exit_code == 1 and f"grace {bad!r} is not a duration" in refused.output
    with pytest.raises(InvalidInput, match="negative"):
        shared.gc(grace=-5)


def test_a_non_admin_gc_is_refused_recorded_and_removes_nothing(
    shared: Registry, aged: Registry, tmp_path: Path
) -> None:
    orphan = _orphan(shared, tmp_path, b"still here")
    shared.add_user("bob", roles=["author", "release-manager"])
    bob = aged.acting_as("bob")
    with pytest.raises(PermissionDenied, match="bob may not gc"):
        bob.gc()
    assert orphan in blob_names(shared)
    event = shared.audit_log()[-1]
    assert (event.action, event.actor, event.subject) == ("gc refused", "bob", "blob store")
    assert "may not gc" in event.data["rules"][0]["message"]
    with pytest.raises(PermissionDenied):
        bob.gc(dry_run=True)  # a dry run is refused too, and writes nothing
    assert shared.audit_log()[-1].seq == event.seq
    refused = run("gc", "--grace", "0s", user="bob")
    assert refused.exit_code == 1 and "bob may not gc" in refused.output
    assert orphan in blob_names(shared)
    assert shared.audit_verify().ok, shared.audit_verify().findings
    assert json.loads(shared.audit_report(format="json").content)["integrity"]["ok"] is True


def test_gc_is_signed_under_a_policy_that_requires_signatures(team, llama, tmp_path: Path) -> None:
    alice = team("alice")
    alice.push(llama.adapter, name="s", base=str(llama.base))
    orphan = _orphan(alice, tmp_path, b"signed away")
    settings = replace(Settings.from_env(), user="alice")
    with Registry(settings=settings, clock=later()) as unsigned, pytest.raises(PolicyNotMet, match="gc to be signed"):
        unsigned.gc()
    refusal = alice.audit_log()[-1]
    assert refusal.action == "gc refused" and refusal.data["rules"][0]["rule"] == "signatures"
    assert orphan in blob_names(alice)
    with Registry(settings=replace(settings, key=team.key("alice")), clock=later()) as signed:
        result = signed.gc()
    assert [b.sha256 for b in result.blobs] == [orphan]
    event = alice.audit_log()[-1]
    assert event.action == "gc" and event.data["signed"]["key"]
    assert json.loads(event.data["signed"]["payload"])["blobs"] == [orphan]
    verified = alice.audit_verify(trust=team.trust.path, blobs="full")
    assert verified.ok, verified.findings
    with pytest.raises(PermissionDenied, match="bob may not gc"):
        team("bob").gc()


def test_gc_keeps_the_pushed_blobs_of_a_version_rewritten_to_other_bytes(reg: Registry, aged: Registry, llama) -> None:
    pushed = reg.push(llama.adapter, name="s", base=str(llama.base))
    weights = _sha(reg, pushed.ref)
    attacker = Attacker(reg)
    [row] = attacker.rows("SELECT * FROM versions")
    _point_weights_at_the_config(attacker, row)  # no manifest names the pushed weights any more ...
    assert aged.gc().blobs == ()  # ... but the push event does: the evidence is kept
    assert weights in blob_names(reg)
    assert {p.kind for p in reg.fsck().version_problems} == {"version-changed", "version-files-changed"}


def test_gc_removes_nothing_while_a_manifest_cannot_be_read(
    reg: Registry, aged: Registry, llama, tmp_path: Path
) -> None:
    reg.push(llama.adapter, name="s", base=str(llama.base))
    orphan = _orphan(reg, tmp_path, b"an orphan")
    Attacker(reg).execute("UPDATE versions SET manifest = ?", ("not a manifest",))
    with pytest.raises(IntegrityError, match="the manifest of s:1 cannot be read"):
        aged.gc()
    assert orphan in blob_names(reg)
    assert [p.kind for p in reg.fsck().version_problems] == ["manifest-edited", "manifest-edited"]


# -- gc never races a push ---------------------------------------------------------------------------------


def test_a_blob_written_after_the_listing_is_never_removed(
    shared: Registry, aged: Registry, llama, tmp_path: Path
) -> None:
    old = _orphan(shared, tmp_path, b"orphaned before the listing")
    plan = aged._gc.plan(aged.actor, 24 * 3600)  # phase 1: the store listed, everything in it "old"
    # a push in flight stores a blob (its version not recorded yet), and another push completes
    newer = _orphan(shared, tmp_path, b"stored after the listing")
    pushed = shared.push(llama.adapter, name="c", base=str(llama.base), description="after the listing")
    result = aged._gc.apply(aged.actor, plan, None)  # phase 2
    assert [b.sha256 for b in result.blobs] == [old]
    assert newer in blob_names(shared)  # two days old by gc's clock, but not in its listing
    shared.pull(pushed.ref, tmp_path / "c")
    assert shared.fsck().ok


def test_a_blob_a_version_references_since_the_listing_is_kept(
    aged: Registry, reg: Registry, llama, tmp_path: Path
) -> None:
    files = [p for p in sorted(llama.adapter.iterdir()) if p.is_file()]
    orphans = {reg._blobs.put(p).sha256 for p in files}  # a crashed push left the adapter's blobs
    plan = aged._gc.plan(aged.actor, 24 * 3600)
    assert orphans <= {b.sha256 for b in plan.blobs}
    pushed = reg.push(llama.adapter, name="d", base=str(llama.base))  # a push now records a version using them
    result = aged._gc.apply(aged.actor, plan, None)
    assert result.blobs == () and result.referenced == len(orphans)  # read fresh inside the write transaction
    reg.pull(pushed.ref, tmp_path / "d")


@pytest.mark.local_store  # an object store cannot refresh an object's time without copying it
@pytest.mark.parametrize("others", [0, 100], ids=["asked-per-blob", "re-listed"])
def test_a_blob_stored_again_by_a_push_after_the_listing_is_kept(reg: Registry, tmp_path: Path, others: int) -> None:
    """With few candidates gc asks about each again; with many (over RELIST_OVER) it lists the store again."""
    three_days_ago = time.time() - 3 * 86400
    source = tmp_path / "file"
    source.write_bytes(b"a file a push is storing again")
    orphan = reg._blobs.put(source).sha256
    old = [orphan]
    for i in range(others):
        extra = tmp_path / f"old-{i}"
        extra.write_bytes(f"an old orphan {i}".encode())
        old.append(reg._blobs.put(extra).sha256)
    for sha in old:
        os.utime(reg._blobs.path(sha), (three_days_ago, three_days_ago))
    plan = reg._gc.plan(reg.actor, 24 * 3600)
    assert sorted(b.sha256 for b in plan.blobs) == sorted(old)
    again = reg._blobs.put(source)  # a push finds it stored, and writes its time anew
    assert again.sha256 == orphan and not again.new
    result = reg._gc.apply(reg.actor, plan, None)
    assert orphan not in {b.sha256 for b in result.blobs} and result.refreshed == 1
    assert len(result.blobs) == others
    assert orphan in blob_names(reg)


class _GcAfterStoring:
    """The registry's blob store, running gc once a push has stored its last file (before the push's
    write transaction): the moment a removal could hurt a push."""

    def __init__(self, inner: Any, files: int, gc: Callable[[], Any]) -> None:
        self._inner, self._files, self._gc = inner, files, gc
        self.removed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        stored = self._inner.put(*args, **kwargs)
        self._files -= 1
        if self._files == 0:
            self.removed = [b.sha256 for b in self._gc().blobs]
        return stored


def test_a_push_whose_blobs_gc_removed_before_it_committed_stores_them_again(
    backend, aged: Registry, reg: Registry, llama, tmp_path: Path
) -> None:
    files = [p for p in sorted(llama.adapter.iterdir()) if p.is_file()]
    for p in files:
        reg._blobs.put(p)  # a crashed push left the adapter's blobs: the next push finds them stored
    store = _GcAfterStoring(open_blob_store(reg.settings.store), len(files), aged.gc)
    with Registry(blob_store=store) as pushing:
        pushed = pushing.push(llama.adapter, name="e", base=str(llama.base))
    assert len(store.removed) == len(files)  # gc removed every blob between the push's store and its commit ...
    assert {f.sha256 for f in reg.show(pushed.ref).manifest.files} <= blob_names(reg)  # ... and it stored them again
    reg.pull(pushed.ref, tmp_path / "e")
    assert reg.fsck().ok
