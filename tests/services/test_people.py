"""User administration: removing users, revoking roles, rotating keys; each signed, audited and replayed
by `audit verify`, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from attacker import Attacker

from registry import InvalidInput, NotFound, Registry
from registry.errors import PermissionDenied, PolicyNotMet

SIGNED = """name: signed
approvals: {count: 1, roles: [reviewer, risk], author_may_approve: false}
signatures: {required: true}
"""


def _pushed(team, llama, tmp_path: Path) -> str:
    """support:1 pushed by alice under a policy that requires signatures and one approval."""
    alice = team("alice")
    (tmp_path / "signed.yaml").write_text(SIGNED)
    alice.set_policy(tmp_path / "signed.yaml")
    return alice.push(llama.adapter, name="support", base=str(llama.base)).ref


def test_a_removed_user_can_no_longer_act_and_keeps_their_history(team, llama, tmp_path: Path) -> None:
    ref = _pushed(team, llama, tmp_path)
    team("alice").review(ref)
    bob = team("bob")
    bob.approve(ref, comment="fine")
    removed = team("alice").remove_user("bob", reason="left the company")
    assert removed.removed_by == "alice" and removed.roles == () and removed.key_fingerprint is None
    with pytest.raises(PermissionDenied, match=r"bob was removed from this registry at .* by alice"):
        bob.add_evals(ref, {"accuracy": 0.9})
    # the history stays: the approval, the user's grants and keys, and it all still verifies
    assert [a.actor for a in team("carol").show(ref).approvals] == ["bob"]
    assert team("carol").show(ref).approvals[0].signature_valid is True
    detail = team("carol").user_detail("bob")
    assert detail.removal_reason == "left the company" and [g.role for g in detail.grants] == ["reviewer"]
    assert [k.active for k in detail.keys] == [False]
    assert "bob" not in [u.name for u in team("carol").users()]
    assert "bob" in [u.name for u in team("carol").users(include_removed=True)]
    result = team("carol").audit_verify(trust=team.trust.path)
    assert result.ok, result.findings
    events = team("carol").audit_log()
    assert events[-1].action == "user remove" and events[-1].data["signed"]["key"]
    # a removed user's name is not given to someone else, and they are not removed twice
    with pytest.raises(InvalidInput, match="a removed user's name is not reused"):
        team("alice").add_user("bob", roles=["reviewer"])
    with pytest.raises(InvalidInput, match="bob was removed"):
        team("alice").remove_user("bob")


def test_revoking_a_role_stops_that_action_only(team, llama, tmp_path: Path) -> None:
    ref = _pushed(team, llama, tmp_path)
    alice = team("alice")
    alice.add_user("dave", roles=["auditor"])
    info = alice.revoke_role("dave", "release-manager", reason="moved teams")
    assert info.roles == ("auditor",)
    alice.review(ref)
    with pytest.raises(PermissionDenied, match="dave may not release"):
        team("dave").release(ref, channel="staging")
    with pytest.raises(NotFound, match="dave does not hold the role 'risk'"):
        alice.revoke_role("dave", "risk")
    with pytest.raises(InvalidInput, match="unknown role 'boss'"):
        alice.revoke_role("dave", "boss")
    detail = alice.user_detail("dave")
    revoked = [g for g in detail.grants if g.role == "release-manager"]
    assert revoked[0].revoked_by == "alice" and revoked[0].reason == "moved teams" and not revoked[0].active
    # granting it again gives it back, and the history keeps both
    alice.add_user("dave", roles=["release-manager"])
    assert "release-manager" in alice.user_detail("dave").user.roles
    assert [g.active for g in alice.user_detail("dave").grants if g.role == "release-manager"] == [False, True]
    assert alice.audit_verify(trust=team.trust.path).ok


def test_only_admins_administer_and_the_last_admin_stays(team) -> None:
    with pytest.raises(PermissionDenied, match="bob may not users remove"):
        team("bob").remove_user("carol")
    with pytest.raises(PermissionDenied, match="bob may not users revoke-role"):
        team("bob").revoke_role("carol", "risk")
    with pytest.raises(InvalidInput, match="alice is the registry's only admin"):
        team("alice").remove_user("alice")
    with pytest.raises(InvalidInput, match="only admin"):
        team("alice").revoke_role("alice", "admin")
    team("alice").add_user("carol", roles=["admin"])
    team("alice").revoke_role("carol", "admin")  # another admin exists: alice
    assert "admin" not in team("carol").user_detail("carol").user.roles


def test_user_administration_must_be_signed_under_a_signing_policy(team) -> None:
    from dataclasses import replace

    unsigned = Registry(settings=replace(team("alice").settings, key=None))
    try:
        with pytest.raises(PolicyNotMet, match="requires user remove to be signed"):
            unsigned.remove_user("erin")
        with pytest.raises(PolicyNotMet, match="requires role revoke to be signed"):
            unsigned.revoke_role("erin", "reviewer")
    finally:
        unsigned.close()
    assert "reviewer" in team("alice").user_detail("erin").user.roles


def test_key_rotation_keeps_old_signatures_verifiable(team, llama, tmp_path: Path) -> None:
    ref = _pushed(team, llama, tmp_path)
    team("alice").review(ref)
    team("bob").approve(ref)
    new = Registry.generate_key(tmp_path / "new", "bob")
    before = team("bob").user_detail("bob").keys[-1].fingerprint
    rotated = team("alice").add_user("bob", public_key=new["public_key"])
    assert rotated.key_fingerprint == new["fingerprint"] != before
    keys = team("alice").user_detail("bob").keys
    assert [(k.fingerprint, k.active) for k in keys] == [(before, False), (new["fingerprint"], True)]
    # the old approval still verifies; the old key no longer signs
    assert team("carol").show(ref).approvals[0].signature_valid is True
    with pytest.raises(PermissionDenied, match="is not bob's registered key"):
        team("bob").add_evals(ref, {"f1": 0.5})
    team("bob").add_evals(ref, {"f1": 0.5}, key=new["private_key"])
    result = team("carol").audit_verify(trust=team.trust.path)
    assert result.ok, result.findings


def test_a_forged_removal_or_revocation_is_caught(team, llama, tmp_path: Path) -> None:
    """Whoever holds the database inserts a revocation row, or deletes a removal: audit verify names it."""
    _pushed(team, llama, tmp_path)
    alice = team("alice")
    alice.revoke_role("carol", "risk")
    attacker = Attacker(alice)
    grant = attacker.rows("SELECT id FROM role_grants WHERE user_name = ?", ("bob",))[0]
    attacker.insert(
        "role_revocations",
        {"grant_id": grant["id"], "user_name": "bob", "role": "reviewer", "revoked_at": "2026-01-01T00:00:00.000000Z",
         "revoked_by": "alice", "reason": None},
    )  # fmt: skip
    attacker.execute("DELETE FROM role_revocations WHERE user_name = ?", ("carol",))
    kinds = {(f.kind, f.message.split(" row ")[0]) for f in alice.audit_verify().findings}
    assert ("fact-unrecorded", "role_revocations") in kinds
    assert ("fact-deleted", "role_revocations") in kinds
