"""The tamper-evident audit log: what is recorded, and each attack detected, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from registry import Registry, StorageError
from registry.domain import signing
from registry.domain.audit import checkpoint_payload, event_hash
from registry.domain.canonical import canonical_json
from registry.errors import PolicyNotMet
from tamper import restore, snapshot, tampering


def _activity(reg: Registry, llama, n: int = 2) -> None:
    for _ in range(n):
        ref = reg.push(llama.adapter, name="a", base=str(llama.base), evals={"accuracy": 0.9}).ref
        reg.review(ref)
        reg.approve(ref, comment="ok")
        reg.release(ref, channel="staging")


def _first(reg: Registry, checkpoints=()):
    result = reg.audit_verify(checkpoints)
    assert not result.ok
    return result.findings[0]


def _kinds(reg: Registry, checkpoints=()) -> set[str]:
    return {f.kind for f in reg.audit_verify(checkpoints).findings}


def test_every_state_changing_action_appends_an_event(reg: Registry, llama, tmp_path: Path) -> None:
    reg.generate_key(tmp_path / "k", "tester")
    reg.add_user("tester", public_key=tmp_path / "k" / "tester.pub")
    reg.add_user("bob", roles=["reviewer"])
    policy = tmp_path / "p.yaml"
    policy.write_text("name: p\napprovals: {count: 1}\n")
    reg.set_policy(policy)
    ref = reg.push(llama.adapter, name="a", base=str(llama.base)).ref
    reg.add_evals(ref, {"accuracy": 0.9})
    reg.verify(ref, mode="static")
    reg.review(ref)
    reg.approve(ref, key=tmp_path / "k" / "tester.key")
    reg.release(ref, channel="staging")
    ref2 = reg.push(llama.adapter, name="a").ref
    reg.review(ref2)
    reg.reject(ref2, comment="no")
    reg.deprecate(ref2)
    ref3 = reg.push(llama.adapter, name="a").ref
    reg.review(ref3)
    reg.approve(ref3)
    reg.release(ref3, channel="staging")
    reg.rollback("a", channel="staging")
    reg.revoke(ref3, reason="bad")
    actions = [e.action for e in reg.audit_log()]
    assert actions[:4] == ["user bootstrap", "user update", "user add", "policy set"]
    for action in (
        "push",
        "eval add",
        "verify",
        "review",
        "approve",
        "release",
        "reject",
        "deprecate",
        "rollback",
        "revoke",
    ):
        assert action in actions
    signed = next(e for e in reg.audit_log("a:1") if e.action == "approve")
    assert json.loads(signed.payload)["signed"]["signature"]
    assert [e.seq for e in reg.audit_log()] == list(range(1, len(actions) + 1))
    assert {e.subject for e in reg.audit_log("a:2")} == {"a:2"}
    assert reg.audit_verify().ok


def test_a_refused_action_records_only_the_refusal(reg: Registry, llama, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("evals: [{metric: accuracy, min: 0.99}]\n")
    reg.set_policy(strict)
    ref = reg.push(llama.adapter, name="a", evals={"accuracy": 0.5}).ref
    reg.review(ref)
    before = len(reg.audit_log())
    with pytest.raises(PolicyNotMet):
        reg.approve(ref, comment="looks fine to me")
    events = reg.audit_log()
    assert len(events) == before + 1
    refused = events[-1]
    assert (refused.action, refused.subject, refused.actor) == ("approve refused", ref, reg.user)
    assert [r["rule"] for r in refused.data["rules"]] == ["evals:accuracy"]
    assert refused.data["comment"] == "looks fine to me" and "facts" not in refused.data
    assert reg.show(ref).approvals == () and reg.show(ref).state == "in_review"
    assert reg.audit_verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "UPDATE versions SET number = 9",
        "DELETE FROM approvals",
    ],
)
def test_the_database_refuses_updates_and_deletes(reg: Registry, llama, statement: str) -> None:
    _activity(reg, llama, 1)
    with pytest.raises((StorageError, DBAPIError), match="append-only"), reg._db.write() as s:
        s.execute(text(statement))
    assert reg.audit_verify().ok


def test_an_edited_payload(reg: Registry, llama) -> None:
    _activity(reg, llama)
    with tampering(reg) as s:
        s.execute(text("UPDATE audit_events SET payload = :p WHERE seq = 5"), {"p": '{"comment":"forged"}'})
    finding = _first(reg)
    assert (finding.kind, finding.seq) == ("edited", 5)
    assert finding.message.startswith("event 5 (") and "was edited" in finding.message


def test_a_deleted_event(reg: Registry, llama) -> None:
    _activity(reg, llama)
    with tampering(reg) as s:
        s.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    finding = _first(reg)
    assert (finding.kind, finding.seq) == ("deleted", 4)
    assert "event 4 is missing" in finding.message


def test_two_events_swapped(reg: Registry, llama) -> None:
    _activity(reg, llama)
    with tampering(reg) as s:
        s.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 3"))
        s.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 4"))
        s.execute(text("UPDATE audit_events SET seq = 4 WHERE seq = -1"))
    finding = _first(reg)
    assert (finding.kind, finding.seq) == ("reordered", 3)
    assert "was recorded as event 4" in finding.message


def test_the_tail_cut_off_is_caught_by_a_checkpoint(reg: Registry, llama, tmp_path: Path) -> None:
    _activity(reg, llama)
    checkpoint = reg.audit_checkpoint(tmp_path / "cp.json")
    with tampering(reg) as s:
        s.execute(text("DELETE FROM audit_events WHERE seq > :n"), {"n": checkpoint.size - 3})
    # the chain alone cannot tell; the checkpoint kept on this machine and the orphaned facts do
    assert {"truncated", "fact-unrecorded"} <= _kinds(reg)
    finding = _first(reg, [tmp_path / "cp.json"])
    assert finding.kind == "truncated"
    assert f"records {checkpoint.size} events but the log has {checkpoint.size - 3}" in finding.message


def test_a_database_restored_from_an_older_copy(reg: Registry, llama, tmp_path: Path) -> None:
    _activity(reg, llama, 1)
    old = snapshot(reg, "old")
    _activity(reg, llama, 1)  # more history happens ...
    reg.audit_checkpoint(tmp_path / "newer.json")  # ... and a checkpoint is taken and kept elsewhere
    restore(reg, old)
    assert _kinds(reg) == {"truncated"}  # the copy kept on this machine already catches it
    finding = _first(reg, [tmp_path / "newer.json"])
    assert finding.kind == "truncated" and "restored from an older copy" in finding.message


def test_every_hash_recomputed_after_an_edit(reg: Registry, llama, tmp_path: Path) -> None:
    _activity(reg, llama)
    reg.audit_checkpoint(tmp_path / "cp.json")
    with tampering(reg) as s:  # rewrite event 5 and recompute every hash after it: the chain is consistent again
        rows = s.execute(
            text("SELECT seq, at, actor, action, subject, payload, prev_hash FROM audit_events ORDER BY seq")
        ).all()
        prev = None
        for r in rows:
            payload = '{"comment":"forged"}' if r.seq == 5 else r.payload
            prev_hash = r.prev_hash if prev is None else prev
            new = event_hash(r.seq, r.at, r.actor, r.action, r.subject, payload, prev_hash)
            s.execute(
                text("UPDATE audit_events SET payload = :p, prev_hash = :ph, hash = :h WHERE seq = :s"),
                {"p": payload, "ph": prev_hash, "h": new, "s": r.seq},
            )
            prev = new
    # the chain is internally consistent; the checkpoint kept here, and the facts event 5 no longer records, are not
    assert {"rewritten", "fact-unrecorded"} <= _kinds(reg)
    finding = _first(reg, [tmp_path / "cp.json"])
    assert finding.kind == "rewritten"
    # and a new checkpoint for the rewritten log cannot be forged without the registry key
    forged_private, forged_public = signing.generate_keypair()
    events = reg.audit_log()
    payload = checkpoint_payload(
        len(events), events[-1].hash, "2026-11-22T00:00:00.000000Z", signing.fingerprint(forged_public)
    )
    forged = {**payload, "signature": signing.sign(forged_private, canonical_json(payload))}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    finding = _first(reg, [tmp_path / "forged.json"])
    assert finding.kind == "bad-signature" and "not signed by the registry key" in finding.message


def test_checkpoints_are_signed_by_a_key_outside_the_database(reg: Registry, llama, tmp_path: Path) -> None:
    _activity(reg, llama, 1)
    checkpoint = reg.audit_checkpoint(tmp_path / "cp.json")
    key_file = reg._audit.keys.key_path(checkpoint.registry)
    assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not key_file.is_relative_to(reg.settings.home), "the registry key lives outside the registry's home"
    assert key_file.is_relative_to(reg.settings.state_dir / checkpoint.registry)
    assert checkpoint.key == signing.fingerprint(key_file.with_suffix(".pub").read_bytes())
    result = reg.audit_verify([tmp_path / "cp.json"])
    assert result.ok and result.checkpoints[0]["signature_valid"] is True
    data = json.loads((tmp_path / "cp.json").read_text())
    data["size"] -= 1  # any edit of the file breaks its signature
    (tmp_path / "cp.json").write_text(json.dumps(data))
    assert _first(reg, [tmp_path / "cp.json"]).kind == "bad-signature"
