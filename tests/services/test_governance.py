"""Lifecycle, approvals, channels and rollback under policies, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import InvalidInput, NotFound, Registry
from registry.errors import InvalidTransition, PermissionDenied, PolicyNotMet

ROOT = Path(__file__).resolve().parents[2]


def _ready(team, llama, tmp_path: Path, version_note: str = "first", accuracy: float = 0.9) -> str:
    """Push as alice with full lineage, submit for review, verify on the recorded base."""
    data = tmp_path / f"train-{version_note}.jsonl"
    data.write_text('{"q": 1}\n{"q": 2}\n')
    alice = team("alice")
    ref = alice.push(
        llama.adapter,
        name="support",
        base=str(llama.base),
        quantization="nf4",
        datasets=[f"name=tickets,license=cc-by-4.0,path={data}"],
        evals={"accuracy": accuracy},
        description=version_note,
    ).ref
    alice.review(ref)
    assert alice.verify(ref, mode="load", device="cpu").passed
    return ref


def _approve_twice(team, ref: str) -> None:
    team("bob").approve(ref, key=team.key("bob"))
    team("carol").approve(ref, key=team.key("carol"), comment="risk reviewed")


def _failed_rules(exc: pytest.ExceptionInfo[PolicyNotMet]) -> dict[str, str]:
    return {r.rule: r.message for r in exc.value.results if not r.passed}


def test_regulated_end_to_end(team, llama, tmp_path: Path) -> None:
    ref = _ready(team, llama, tmp_path)
    alice, bob, carol, dave, erin = (team(u) for u in ("alice", "bob", "carol", "dave", "erin"))

    # the author's approval is refused even though alice holds the reviewer role and signs
    with pytest.raises(PolicyNotMet) as exc:
        alice.approve(ref, key=team.key("alice"))
    assert "alice is the author of support:1" in _failed_rules(exc)["approvals"]
    # a reviewer without a registered key cannot sign, so cannot approve
    with pytest.raises(PolicyNotMet) as exc:
        erin.approve(ref)
    assert "requires approve to be signed" in _failed_rules(exc)["signatures"]
    with pytest.raises(PermissionDenied, match="erin has no registered public key"):
        erin.approve(ref, key=team.key("erin"))
    # signing with somebody else's key is refused
    with pytest.raises(PermissionDenied, match="is not bob's registered key"):
        bob.approve(ref, key=team.key("carol"))

    first = bob.approve(ref, key=team.key("bob"), comment="looks right")
    assert (first.state, first.approvals, first.approvals_required) == ("in_review", 1, 2)
    with pytest.raises(PolicyNotMet, match="already approved by bob"):
        bob.approve(ref, key=team.key("bob"))
    # one approval is not enough: not approved, so not releasable
    assert alice.show(ref).state == "in_review"
    assert alice.check_policy(ref).to_dict()["passed"] is False
    with pytest.raises(InvalidTransition, match="support:1 is in_review"):
        dave.release(ref, channel="staging", key=team.key("dave"))

    second = carol.approve(ref, key=team.key("carol"))
    assert (second.state, second.approvals) == ("approved", 2)
    approvals = alice.show(ref).approvals
    assert [(a.actor, a.signature_valid) for a in approvals] == [("bob", True), ("carol", True)]
    assert {a.policy_digest for a in approvals} == {alice.policy().policy.digest}

    # production before staging is refused; staging then production works
    with pytest.raises(PolicyNotMet) as exc:
        dave.release(ref, channel="production", key=team.key("dave"))
    assert "needs a prior release to staging" in _failed_rules(exc)["channels:order"]
    staging = dave.release(ref, channel="staging", key=team.key("dave"))
    assert (staging.state, staging.previous, staging.signed_with is not None) == ("released", None, True)
    production = dave.release(ref, channel="production", key=team.key("dave"))
    assert production.policy_digest == alice.policy(channel="production").policy.digest
    assert alice.show("support@production").digest == alice.show(ref).digest
    assert alice.show(ref).channels == ("production", "staging")

    # a second version goes the same way, then production is rolled back
    ref2 = _ready(team, llama, tmp_path, "second", accuracy=0.95)
    _approve_twice(team, ref2)
    dave.release(ref2, channel="staging", key=team.key("dave"))
    dave.release(ref2, channel="production", key=team.key("dave"))
    assert alice.show("support@production").version == 2
    back = dave.rollback("support", channel="production", key=team.key("dave"), reason="latency regression")
    assert (back.ref, back.previous, back.action) == ("support:1", "support:2", "rollback")
    assert alice.show("support@production").version == 1
    pulled = alice.pull("support@production", tmp_path / "served")
    assert pulled.version == 1

    # revoke: refused while a channel points at it; then refused as a channel target
    with pytest.raises(InvalidInput, match="support@staging points to"):
        carol.revoke(ref2, reason="trained on data without consent")
    dave.rollback("support", channel="staging", key=team.key("dave"))
    revoked = carol.revoke(ref2, reason="trained on data without consent")
    assert revoked.state == "revoked"
    with pytest.raises(InvalidTransition, match="support:2 is revoked"):
        dave.release(ref2, channel="staging", key=team.key("dave"))
    with pytest.raises(InvalidTransition, match="support:2 is revoked"):
        dave.rollback("support", channel="production", to=2, key=team.key("dave"))
    with pytest.raises(PermissionDenied, match=r"was revoked .* trained on data without consent.*--allow-revoked"):
        alice.pull(ref2, tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    assert alice.pull(ref2, tmp_path / "forensics", allow_revoked=True).version == 2

    channels = {c.channel: c for c in alice.channels("support")}
    assert channels["production"].current == 1 and channels["staging"].current == 1
    assert [(m.action, m.version) for m in channels["production"].history] == [
        ("release", 1),
        ("release", 2),
        ("rollback", 1),
    ]
    assert all(m.signature_valid for m in channels["production"].history)
    assert alice.audit_verify().ok


def test_roles_are_enforced(team, llama, tmp_path: Path) -> None:
    ref = _ready(team, llama, tmp_path)
    with pytest.raises(PermissionDenied, match="bob may not push: it needs one of the roles admin, author"):
        team("bob").push(llama.adapter, name="support")
    _approve_twice(team, ref)
    with pytest.raises(PermissionDenied, match="bob may not release"):
        team("bob").release(ref, channel="staging", key=team.key("bob"))
    with pytest.raises(PermissionDenied, match="may not policy set"):
        team("dave").set_policy(ROOT / "policies" / "default.yaml")
    with pytest.raises(PermissionDenied, match="may not users add"):
        team("bob").add_user("mallory", roles=["admin"])
    with pytest.raises(PermissionDenied, match="mallory is not a user of this registry"):
        team("mallory").approve(ref)
    with pytest.raises(PermissionDenied, match="may not revoke"):
        team("dave").revoke(ref, reason="x")


def test_a_key_cannot_be_registered_to_two_users(team) -> None:
    with pytest.raises(InvalidInput, match="already registered to bob"):
        team("alice").add_user("bob-again", roles=["reviewer"], public_key=team.keys / "bob.pub")


def test_default_policy_lets_a_single_user_work(reg: Registry, llama) -> None:
    ref = reg.push(llama.adapter, name="solo").ref
    assert reg.users()[0].roles == ("admin",)  # the first user of a new registry is its admin
    reg.review(ref)
    approved = reg.approve(ref)  # the author may approve under the default policy
    assert approved.state == "approved" and approved.policy == "default"
    reg.release(ref, channel="production")
    again = reg.release(ref, channel="production")
    assert again.changed is False  # re-releasing the same version changes nothing
    ref2 = reg.push(llama.adapter, name="solo").ref
    reg.review(ref2)
    reg.approve(ref2)
    reg.release(ref2, channel="production")
    assert reg.rollback("solo", channel="production").ref == "solo:1"
    with pytest.raises(NotFound, match="no earlier release"):
        reg.rollback("solo", channel="production")
    assert reg.rollback("solo", channel="production", to=2).ref == "solo:2"
    with pytest.raises(InvalidInput, match="already points to solo:2"):
        reg.rollback("solo", channel="production", to=2)
    with pytest.raises(InvalidInput, match="never released to production"):
        reg.rollback("solo", channel="production", to=7)
    with pytest.raises(NotFound, match="was never released"):
        reg.rollback("solo", channel="canary")


def test_rollback_walks_back_releases_like_a_stack(reg: Registry, llama) -> None:
    for _ in range(3):
        ref = reg.push(llama.adapter, name="s").ref
        reg.review(ref)
        reg.approve(ref)
        reg.release(ref, channel="prod")
    assert [reg.rollback("s", channel="prod").ref for _ in range(2)] == ["s:2", "s:1"]


def test_lifecycle_refusals_name_the_allowed_actions(reg: Registry, llama) -> None:
    ref = reg.push(llama.adapter, name="a").ref
    with pytest.raises(InvalidTransition, match=r"a:1 is draft; .*run `adapters review a:1` first"):
        reg.approve(ref)
    with pytest.raises(InvalidTransition, match="a:1 is draft"):
        reg.release(ref, channel="staging")
    reg.review(ref)
    reg.reject(ref, comment="wrong dataset")
    assert reg.show(ref).state == "rejected"
    with pytest.raises(InvalidTransition, match=r"a:1 is rejected; .*a rejected version is final"):
        reg.review(ref)
    reg.deprecate(ref, reason="superseded")
    history = [(t.action, t.from_state, t.to_state) for t in reg.show(ref).history]
    assert history == [
        ("review", "draft", "in_review"),
        ("reject", "in_review", "rejected"),
        ("deprecate", "rejected", "deprecated"),
    ]
    with pytest.raises(InvalidInput, match="needs a comment"):
        reg.reject(ref, comment="")


def test_channel_references_resolve_everywhere(reg: Registry, llama, tmp_path: Path) -> None:
    ref = reg.push(llama.adapter, name="a", base=str(llama.base)).ref
    reg.review(ref)
    reg.approve(ref)
    reg.release(ref, channel="staging")
    assert reg.show("a@staging").version == 1
    assert reg.pull("a@staging", tmp_path / "out").version == 1
    assert reg.verify("a@staging", mode="static").passed
    with pytest.raises(NotFound, match="no channel 'production' \\(its channels are staging\\)"):
        reg.show("a@production")


def test_eval_add_and_policies_read_the_latest_value(team, llama, tmp_path: Path) -> None:
    ref = _ready(team, llama, tmp_path, accuracy=0.9)
    alice = team("alice")
    label, recorded = alice.add_evals(ref, {"accuracy": 0.8}, dataset=None)
    assert label == "support:1" and recorded[0].source == "eval add"
    check = {r.rule: r for r in alice.check_policy(ref).results}
    assert not check["evals:accuracy"].passed and "0.8" in check["evals:accuracy"].message
    with pytest.raises(PolicyNotMet) as exc:
        team("bob").approve(ref, key=team.key("bob"))
    assert "evals:accuracy" in _failed_rules(exc)
    alice.add_evals(ref, ["accuracy=0.93"])
    assert team("bob").approve(ref, key=team.key("bob")).approvals == 1
    assert [e.value for e in alice.show(ref).evals] == [0.9, 0.8, 0.93]
    alice.add_evals(ref, {"f1": 0.5}, dataset="holdout")
    assert alice.show(ref).evals[-1].dataset == "holdout"


def test_a_channel_can_have_its_own_policy(reg: Registry, llama, tmp_path: Path) -> None:
    strict = tmp_path / "prod.yaml"
    strict.write_text("name: prod-only\napprovals: {count: 1}\nevals:\n  - {metric: accuracy, min: 0.99}\n")
    active = reg.set_policy(strict, channel="production")
    assert reg.policy(channel="production").policy.name == "prod-only"
    assert reg.policy().policy.name == "default" and reg.policy().builtin
    assert active.policy.digest == reg.policy(channel="production").policy.digest
    ref = reg.push(llama.adapter, name="a", evals={"accuracy": 0.95}).ref
    reg.review(ref)
    reg.approve(ref)
    reg.release(ref, channel="staging")
    with pytest.raises(PolicyNotMet, match="prod-only"):
        reg.release(ref, channel="production")
    check = reg.check_policy(ref, channel="production")
    assert check.policy == "prod-only" and not check.passed


def test_a_bad_policy_file_is_refused_and_nothing_changes(reg: Registry, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("approvals: {count: 2, quorum: 3}\n")
    with pytest.raises(InvalidInput, match="unknown key 'quorum'"):
        reg.set_policy(bad)
    assert reg.policy().builtin


def test_a_refused_decision_names_every_failing_rule_at_once(team, llama, tmp_path: Path) -> None:
    """An unsigned self-approval by an author without a reviewer role: the signature, the role and the
    author rule in one refusal (not one per attempt), recorded as 'approve refused'."""
    ref = _ready(team, llama, tmp_path)
    team("alice").add_user("frank", roles=["author"])
    frank = team("frank")
    with pytest.raises(PolicyNotMet) as exc:
        frank.approve(ref)
    failed = [r for r in exc.value.results if not r.passed]
    messages = " | ".join(r.message for r in failed)
    assert {r.rule for r in failed} == {"signatures", "approvals"}
    assert "requires approve to be signed" in messages
    assert "frank holds none of the roles reviewer, risk" in messages
    # alice, the author, signing: the author rule is named; her signature is fine
    with pytest.raises(PolicyNotMet) as exc:
        team("alice").approve(ref)
    assert [r.rule for r in exc.value.results if not r.passed] == ["approvals"]
    refused = [e for e in team("carol").audit_log(ref) if e.action == "approve refused"]
    assert [e.actor for e in refused] == ["frank", "alice"]
    assert len(refused[0].data["rules"]) == 2 and refused[1].data["rules"][0]["rule"] == "approvals"
    assert team("carol").audit_verify(trust=team.trust.path).ok


def test_a_refused_release_is_recorded(team, llama, tmp_path: Path) -> None:
    ref = _ready(team, llama, tmp_path)
    _approve_twice(team, ref)
    with pytest.raises(PolicyNotMet, match="release it to staging first"):
        team("dave").release(ref, channel="production")
    last = team("carol").audit_log(ref)[-1]
    assert last.action == "release refused" and last.data["channel"] == "production"
    assert [r["rule"] for r in last.data["rules"]] == ["channels:order"]
    assert team("carol").show(ref).channels == ()
    team("dave").release(ref, channel="staging")
    assert team("carol").audit_verify(trust=team.trust.path).ok


def test_approvers_independent_of_the_author(team, llama, tmp_path: Path) -> None:
    """An admin who is also an author cannot approve alone through reviewers they created themselves."""
    policy = tmp_path / "independent.yaml"
    text = (ROOT / "policies" / "regulated.yaml").read_text()
    policy.write_text(
        text.replace("  author_may_approve: false", "  author_may_approve: false\n  independent_of_author: true")
    )
    team("alice").set_policy(policy)
    ref = _ready(team, llama, tmp_path)
    with pytest.raises(PolicyNotMet, match="bob's account, a role or a key was granted by alice"):
        team("bob").approve(ref)
    # an approver another admin registered is independent of alice
    team("alice").add_user("carol", roles=["admin"])
    team.keys.joinpath("ivan.key").exists() or Registry.generate_key(team.keys, "ivan")
    team("carol").add_user("ivan", roles=["reviewer"], public_key=team.keys / "ivan.pub")
    assert team("ivan").approve(ref, key=team.key("ivan")).approvals == 1
    assert team("carol").audit_verify(trust=team.trust.path).ok
