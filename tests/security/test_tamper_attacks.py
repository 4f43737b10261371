"""Attacks by whoever holds the database (a DBA, a compromised service account, a restored backup),
performed with a raw client on the registry's database (tests/attacker.py), on SQLite and PostgreSQL.
Each one passed every check before facts were bound to the signed chain; each is caught now."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from attacker import Attacker
from stores import overwrite_blob, read_blob, remove_blob

import tinymodels
from registry import IntegrityError, Registry
from registry.domain import signing
from registry.domain.canonical import canonical_json, sha256_digest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def released(team, tiny_models, tmp_path: Path):
    """sum:1 released to staging and production with two signed approvals; sum:2 in review. A checkpoint
    is kept on this machine (as `audit checkpoint` always does)."""
    llama = tiny_models["llama"]
    data = tmp_path / "train.jsonl"
    data.write_text('{"q": 1}\n{"q": 2}\n')
    alice, dave = team("alice"), team("dave")
    second = tinymodels.make_adapter("llama", llama.base, tmp_path / "second", seed=11)
    refs = []
    for adapter in (llama.adapter, second):
        ref = alice.push(
            adapter, name="sum", base=str(llama.base), quantization="nf4", description="summariser",
            datasets=[f"name=tickets,license=cc-by-4.0,path={data}"], evals={"accuracy": 0.9},
        ).ref  # fmt: skip
        alice.review(ref)
        assert alice.verify(ref, mode="load", device="cpu").passed
        refs.append(ref)
    team("bob").approve("sum:1", comment="ok")
    team("carol").approve("sum:1", comment="risk ok")
    dave.release("sum:1", channel="staging")
    dave.release("sum:1", channel="production")
    team("alice").add_user("auditor", roles=["auditor"])
    alice.audit_checkpoint(tmp_path / "before-attack.json")
    assert alice.audit_verify().ok, alice.audit_verify().findings
    return team, Attacker(alice)


def _kinds(reg) -> set[str]:
    return {f.kind for f in reg.audit_verify().findings}


def test_the_honest_registry_verifies_clean(released, tmp_path: Path) -> None:
    team, _ = released
    result = team("auditor").audit_verify(trust=team.trust.path, blobs="full")
    assert result.ok, result.findings
    assert result.initialised_at == 1 and result.unsigned_events == 0
    assert result.signatures >= 10 and result.facts >= 30
    assert result.trust is not None and result.trust["ok"] and result.blobs["checked"] == 6
    report = json.loads(team("alice").audit_report(format="json").content)
    assert report["integrity"]["ok"] is True
    # the only alerts: bob and carol, who approved sum:1, were registered by alice, its author
    assert {(a["kind"], a["subject"]) for a in report["alerts"]} == {("independence", "sum:1")}
    assert len(report["alerts"]) == 2


def test_a_version_row_pointed_at_other_bytes_with_its_digest_recomputed(released) -> None:
    team, attacker = released
    rows = {r["number"]: r for r in attacker.rows("SELECT * FROM versions ORDER BY number")}
    one, two = json.loads(rows[1]["manifest"]), json.loads(rows[2]["manifest"])
    weights = next(f for f in two["files"] if f["path"] == "adapter_model.safetensors")
    one["files"] = [weights if f["path"] == "adapter_model.safetensors" else f for f in one["files"]]
    manifest = canonical_json(one).decode("utf-8")
    attacker.execute(
        "UPDATE versions SET manifest = ?, digest = ? WHERE id = ?",
        (manifest, sha256_digest(manifest.encode()), rows[1]["id"]),
    )

    alice = team("alice")
    assert {"fact-edited", "version-changed", "version-files-changed", "signature-mismatch"} <= _kinds(alice)
    approvals = alice.show("sum:1").approvals
    assert [a.signature_valid for a in approvals] == [False, False]
    assert "digest" in (approvals[0].signature_note or "")
    with pytest.raises(IntegrityError, match="not what its push recorded"):
        alice.pull("sum:1", Path(alice.settings.home).parent / "served")
    report = json.loads(alice.audit_report("sum:1", format="json").content)
    assert {a["kind"] for a in report["alerts"]} >= {"signature", "audit-chain"}


def test_forged_users_keys_and_approvals_inserted_without_events(released) -> None:
    team, attacker = released
    private, public = signing.generate_keypair()
    at = "2026-12-01T12:00:00.000000Z"
    attacker.insert("users", {"name": "mallory", "created_at": at, "created_by": "alice"})
    attacker.insert(
        "role_grants", {"user_name": "mallory", "role": "reviewer", "granted_at": at, "granted_by": "alice"}
    )
    attacker.insert(
        "user_keys",
        {
            "user_name": "mallory",
            "public_key": public.decode(),
            "fingerprint": signing.fingerprint(public),
            "added_at": at,
            "added_by": "alice",
        },
    )
    version = attacker.rows("SELECT v.id, v.digest FROM versions v WHERE v.number = 2")[0]
    policy = team("alice").policy().policy.digest
    fields = {
        "action": "approve",
        "ref": "sum:2",
        "digest": version["digest"],
        "policy": policy,
        "actor": "mallory",
        "at": at,
    }
    payload = signing.signed_payload(fields)
    attacker.insert("approvals", {
        "version_id": version["id"], "decision": "approve", "actor": "mallory", "roles": "reviewer", "comment": "lgtm",
        "policy_digest": policy, "key_fingerprint": signing.fingerprint(public), "signature": signing.sign(private, payload),
        "signed_payload": payload.decode(), "at": at,
    })  # fmt: skip
    assert team("alice").show("sum:2").approvals[-1].signature_valid is True  # a valid signature, by a forged key
    findings = team("alice").audit_verify().findings
    unrecorded = {f.message.split(" row ")[0] for f in findings if f.kind == "fact-unrecorded"}
    assert unrecorded == {"users", "role_grants", "user_keys", "approvals"}


def test_forged_users_with_appended_events_and_a_release_by_the_forged_release_manager(
    released, tmp_path: Path
) -> None:
    team, attacker = released
    private, public = signing.generate_keypair()
    key_file = tmp_path / "mallory.key"
    key_file.write_bytes(private)
    at = "2026-12-01T12:00:00.000000Z"
    user = attacker.insert("users", {"name": "mallory", "created_at": at, "created_by": "alice"})
    grant = attacker.insert(
        "role_grants", {"user_name": "mallory", "role": "release-manager", "granted_at": at, "granted_by": "alice"}
    )
    key = attacker.insert(
        "user_keys",
        {
            "user_name": "mallory",
            "public_key": public.decode(),
            "fingerprint": signing.fingerprint(public),
            "added_at": at,
            "added_by": "alice",
        },
    )
    attacker.append_event(
        "alice", "user add", "mallory",
        {"roles_granted": ["release-manager"], "key_fingerprint": signing.fingerprint(public), "public_key": public.decode()},
        facts=[("users", user), ("role_grants", grant), ("user_keys", key)],
    )  # fmt: skip
    mallory = Registry(user="mallory")
    mallory.release("sum:1", channel="canary", key=key_file)  # the registry itself accepts: its rows say so
    kinds = _kinds(team("alice"))
    assert "signature-missing" in kinds  # the user add was not signed by alice's key
    assert {"signature-key", "unauthorised"} & kinds  # mallory's release is by no key or role the chain established
    mallory.close()


def test_a_user_add_signed_with_the_attackers_own_key_claiming_to_be_the_admin(released) -> None:
    team, attacker = released
    private, public = signing.generate_keypair()
    at = "2026-12-01T12:00:00.000000Z"
    user = attacker.insert("users", {"name": "mallory", "created_at": at, "created_by": "alice"})
    fields = {
        "action": "user add",
        "subject": "mallory",
        "roles_granted": [],
        "key": None,
        "public_key": None,
        "actor": "alice",
        "at": at,
    }
    payload = signing.signed_payload(fields)
    signed = {
        "payload": payload.decode(),
        "signature": signing.sign(private, payload),
        "key": signing.fingerprint(public),
    }
    last_at = attacker.rows("SELECT at FROM audit_events ORDER BY seq DESC LIMIT 1")[0]["at"]
    fields["at"] = last_at
    attacker.append_event(
        "alice",
        "user add",
        "mallory",
        {"roles_granted": [], "key_fingerprint": None, "signed": signed},
        facts=[("users", user)],
    )
    assert "signature-key" in _kinds(team("alice"))


def test_deleted_channel_moves(released) -> None:
    team, attacker = released
    attacker.execute("DELETE FROM channel_moves WHERE channel = 'production'")
    findings = team("alice").audit_verify().findings
    assert [f.kind for f in findings] == ["fact-deleted"]
    assert "channel_moves row" in findings[0].message and "was deleted" in findings[0].message


def test_a_raised_eval(released) -> None:
    team, attacker = released
    attacker.execute("UPDATE evals SET value = 0.99 WHERE metric = 'accuracy'")
    findings = team("alice").audit_verify().findings
    assert {f.kind for f in findings} == {"fact-edited"}
    assert all("evals row" in f.message for f in findings)


def test_role_escalation_with_and_without_an_event(released) -> None:
    team, attacker = released
    at = "2026-12-01T12:00:00.000000Z"
    grant = attacker.insert(
        "role_grants", {"user_name": "erin", "role": "admin", "granted_at": at, "granted_by": "alice"}
    )
    assert "fact-unrecorded" in _kinds(team("alice"))
    attacker.append_event(
        "alice",
        "user update",
        "erin",
        {"roles_granted": ["admin"], "key_fingerprint": None},
        facts=[("role_grants", grant)],
    )
    kinds = _kinds(team("alice"))
    assert "signature-missing" in kinds and "fact-unrecorded" not in kinds


def test_a_re_keyed_reviewer_and_approvals_signed_with_the_new_key(released) -> None:
    team, attacker = released
    private, public = signing.generate_keypair()
    at = attacker.rows("SELECT at FROM audit_events ORDER BY seq DESC LIMIT 1")[0]["at"]
    fingerprint = signing.fingerprint(public)
    key = attacker.insert(
        "user_keys",
        {
            "user_name": "bob",
            "public_key": public.decode(),
            "fingerprint": fingerprint,
            "added_at": at,
            "added_by": "alice",
        },
    )
    attacker.append_event(
        "alice",
        "user update",
        "bob",
        {"roles_granted": [], "key_fingerprint": fingerprint, "public_key": public.decode()},
        facts=[("user_keys", key)],
    )
    version = attacker.rows("SELECT id, digest FROM versions WHERE number = 2")[0]
    policy = team("alice").policy().policy.digest
    fields = {
        "action": "approve",
        "ref": "sum:2",
        "digest": version["digest"],
        "policy": policy,
        "actor": "bob",
        "at": at,
    }
    payload = signing.signed_payload(fields)
    signature = signing.sign(private, payload)
    approval = attacker.insert("approvals", {
        "version_id": version["id"], "decision": "approve", "actor": "bob", "roles": "reviewer", "comment": "lgtm",
        "policy_digest": policy, "key_fingerprint": fingerprint, "signature": signature, "signed_payload": payload.decode(), "at": at,
    })  # fmt: skip
    signed = {"payload": payload.decode(), "signature": signature, "key": fingerprint}
    attacker.append_event(
        "bob",
        "approve",
        "sum:2",
        {"digest": version["digest"], "policy": policy, "signed": signed},
        facts=[("approvals", approval)],
    )
    assert (
        team("alice").show("sum:2").approvals[-1].signature_valid is True
    )  # the database now says bob's key is this one
    kinds = _kinds(team("alice"))
    assert "signature-missing" in kinds  # the re-keying was not signed by the admin ...
    assert "signature-key" in kinds  # ... so the approval is not by bob's key in force


def test_an_unsigned_policy_switch(released) -> None:
    team, attacker = released
    content = (ROOT / "policies" / "default.yaml").read_text()
    at = attacker.rows("SELECT at FROM audit_events ORDER BY seq DESC LIMIT 1")[0]["at"]
    row = attacker.insert(
        "policies",
        {
            "scope": "*",
            "name": "default",
            "content": content,
            "digest": sha256_digest(content.encode()),
            "set_at": at,
            "set_by": "alice",
        },
    )
    attacker.append_event(
        "alice",
        "policy set",
        "registry",
        {"name": "default", "digest": row["digest"], "signatures": False},
        facts=[("policies", row)],
    )
    assert team("alice").policy().policy.name == "default"  # the registry now applies the laxer policy ...
    findings = team("alice").audit_verify().findings
    assert [f.kind for f in findings] == ["signature-missing"]  # ... and audit verify names the switch
    assert "policy set" in findings[0].message


def test_a_rewritten_history_then_a_new_checkpoint(released, tmp_path: Path) -> None:
    team, attacker = released
    attacker.execute("UPDATE audit_events SET payload = ? WHERE seq = 5", ('{"comment":"forged"}',))
    attacker.rechain()
    team("auditor").audit_checkpoint(tmp_path / "after-rewrite.json")  # a fresh checkpoint of the forged log ...
    kinds = _kinds(team("alice"))
    assert "rewritten" in kinds  # ... does not hide it: the checkpoint taken before still catches it
    report = json.loads(team("alice").audit_report(format="json").content)
    assert report["integrity"]["ok"] is False


@pytest.mark.parametrize("damage", ["edited", "swapped", "deleted"])
def test_blob_damage(released, damage: str) -> None:
    team, _ = released
    alice = team("alice")
    files = {f.path: f for f in alice.show("sum:1").manifest.files}
    target = files["adapter_model.safetensors"].sha256
    if damage == "edited":  # same size, other bytes
        data = bytearray(read_blob(alice, target))
        data[-1] ^= 0xFF
        overwrite_blob(alice, target, bytes(data))
    elif damage == "swapped":
        overwrite_blob(alice, target, read_blob(alice, files["adapter_config.json"].sha256))
    else:
        remove_blob(alice, target)
    quick = alice.audit_verify(blobs="quick").findings
    full = alice.audit_verify(blobs="full").findings
    expected = {"edited": "blob-corrupted", "swapped": "blob-size", "deleted": "blob-missing"}[damage]
    assert expected in {f.kind for f in full}
    assert any("sum:1: adapter_model.safetensors" in f.message for f in full)
    assert (damage == "edited") == (not quick)  # same-size damage needs the full re-hash
    assert alice.audit_verify().ok  # without --blobs the store is not read
    report = json.loads(alice.audit_report(format="json").content)
    assert (report["integrity"]["ok"] is False) == (damage != "edited")
