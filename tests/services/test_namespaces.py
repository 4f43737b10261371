"""Role grants scoped to a namespace (issue 13): a reviewer of credit/* reviews credit/* only, and adapters of
other namespaces do not exist for them (not found, never forbidden, so names do not leak). Each attack is a
test, on SQLite and PostgreSQL; the role x action matrix is checked on the permission check itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from attacker import Attacker

from registry import GrantInfo, InvalidInput, KeyInfo, NotFound, Registry, Settings, UserDetail, UserInfo
from registry.domain.actor import Actor
from registry.domain.roles import PERMISSIONS, REGISTRY_WIDE
from registry.domain.tokens import WhoAmI
from registry.errors import PermissionDenied, PolicyNotMet

#: two signed approvals from distinct reviewer/risk users other than the author (the separation of duties
#: a reviewer of another namespace must not satisfy)
DUTIES = """name: duties
approvals: {count: 2, roles: [reviewer, risk], distinct: true, author_may_approve: false}
signatures: {required: true}
"""


def _member(team, name: str, roles: list[str], namespace: str | None = "credit") -> Registry:
    """``name`` added by alice with ``roles`` for ``namespace`` and a key of their own; their registry."""
    Registry.generate_key(team.keys, name)
    team("alice").add_user(name, roles=roles, namespace=namespace, public_key=team.keys / f"{name}.pub")
    reg = Registry(settings=replace(Settings.from_env(), user=name, key=team.keys / f"{name}.key"))
    team._registries[name] = reg  # closed with the team
    return reg


@pytest.fixture
def two(team, llama, tmp_path: Path) -> dict[str, str]:
    """credit/scorer:1 and risk/model:1 in review, and plain:1 (no namespace), pushed by alice under DUTIES."""
    alice = team("alice")
    (tmp_path / "duties.yaml").write_text(DUTIES)
    alice.set_policy(tmp_path / "duties.yaml")
    refs = {}
    for name in ("credit/scorer", "risk/model", "plain"):
        refs[name] = alice.push(llama.adapter, name=name, base=str(llama.base)).ref
        alice.review(refs[name])
    return refs


def _not_found(name: str) -> str:
    return f"adapter '{name}' does not exist; `adapters ls` lists the adapters in this registry"


def test_a_credit_reviewer_does_not_see_a_risk_adapter_anywhere(team, two, llama, tmp_path: Path) -> None:
    frank = _member(team, "frank", ["reviewer"])
    assert sorted(r.name for r in frank.ls()) == ["credit/scorer"]
    assert frank.ls("risk/*") == [] and frank.ls(latest=True)[0].name == "credit/scorer"
    attempts = {
        "show": lambda ref: frank.show(ref),
        "approve": lambda ref: frank.approve(ref, comment="mine now"),
        "reject": lambda ref: frank.reject(ref, comment="no"),
        "review": lambda ref: frank.review(ref),
        "eval add": lambda ref: frank.add_evals(ref, {"accuracy": 0.99}),
        "tag": lambda ref: frank.tag(ref, ["x=y"]),
        "untag": lambda ref: frank.untag(ref, ["x"]),
        "note": lambda ref: frank.note(ref, "seen"),
        "pull": lambda ref: frank.pull(ref, tmp_path / "out"),
        "verify": lambda ref: frank.verify(ref, str(llama.base), mode="static"),
        "merge": lambda ref: frank.merge(ref, out=tmp_path / "merged", base=str(llama.base)),
        "policy check": lambda ref: frank.check_policy(ref),
        "audit log": lambda ref: frank.audit_log(ref),
        "audit log of the adapter": lambda ref: frank.audit_log(ref.partition(":")[0]),
        "channels": lambda ref: frank.channels(ref.partition(":")[0]),
        "deprecate": lambda ref: frank.deprecate(ref, reason="gone"),
        "revoke": lambda ref: frank.revoke(ref, reason="gone"),
        "release": lambda ref: frank.release(ref, channel="staging"),
        "rollback": lambda ref: frank.rollback(ref.partition(":")[0], channel="staging"),
        "audit report": lambda ref: frank.audit_report(ref, format="json"),
    }
    for target in ("risk/model", "plain"):  # another namespace, and a name without one (global grants only)
        for what, attempt in attempts.items():
            with pytest.raises(NotFound) as caught:
                attempt(f"{target}:1")
            assert str(caught.value) == _not_found(target), what
    # the same answer as for a name that does not exist at all
    with pytest.raises(NotFound) as missing:
        frank.show("risk/nothing:1")
    assert str(missing.value) == _not_found("risk/nothing")
    # and no hint names an adapter frank does not see
    with pytest.raises(NotFound) as hinted:
        frank.show("model")
    assert "risk/model" not in str(hinted.value)
    with pytest.raises(NotFound, match="risk/model"):  # a global reviewer's hint names it
        team("bob").show("model")
    # nothing was recorded by any of it
    assert not [e for e in team("alice").audit_log() if e.actor == "frank"]


def test_an_author_of_one_namespace_pushes_there_only(team, two, llama) -> None:
    kim = _member(team, "kim", ["author"])
    assert kim.push(llama.adapter, name="credit/new", base=str(llama.base)).ref == "credit/new:1"
    for name in ("risk/model", "risk/new", "plain"):  # existing or not: the same refusal, nothing leaks
        with pytest.raises(PermissionDenied, match=f"kim may not push {name}: they hold author@credit, none of it"):
            kim.push(llama.adapter, name=name, base=str(llama.base))


def test_a_credit_reviewer_reviews_credit_adapters(team, two) -> None:
    frank = _member(team, "frank", ["reviewer"])
    result = frank.approve(two["credit/scorer"], comment="credit ok")
    assert result.approvals == 1 and result.state == "in_review"
    assert frank.show(two["credit/scorer"]).approvals[0].roles == ("reviewer",)
    frank.add_evals(two["credit/scorer"], {"accuracy": 0.9})
    with pytest.raises(PermissionDenied, match="frank may not review"):  # a reviewer, not an author
        frank.review(two["credit/scorer"])
    carol = team("carol")  # risk for the whole registry
    assert carol.approve(two["credit/scorer"], comment="risk ok").state == "approved"


def test_a_credit_reviewers_approval_does_not_satisfy_a_risk_adapters_policy(team, two) -> None:
    """hank reviews credit/* and authors risk/*: he sees risk/model, but his reviewer grant does not count there."""
    hank = _member(team, "hank", ["reviewer"])
    team("alice").add_user("hank", roles=["author"], namespace="risk")
    with pytest.raises(PolicyNotMet, match="hank holds none of the roles reviewer, risk") as refused:
        hank.approve(two["risk/model"], comment="i review credit")
    assert {r.rule for r in refused.value.results if not r.passed} == {"approvals"}
    team("bob").approve(two["risk/model"], comment="ok")
    check = team("bob").check_policy(two["risk/model"])
    approvals = next(r for r in check.results if r.rule == "approvals")
    assert not approvals.passed and "1 of 2" in approvals.message
    assert team("bob").show(two["risk/model"]).state == "in_review"
    # the same user counts where his grant covers the adapter
    assert hank.approve(two["credit/scorer"]).approvals == 1


def test_scoped_grants_are_signed_and_survive_audit_verify(team, two) -> None:
    frank = _member(team, "frank", ["reviewer", "risk"])
    frank.approve(two["credit/scorer"])
    team("alice").revoke_role("frank", "risk", namespace="credit", reason="one role is enough")
    events = [e for e in team("alice").audit_log() if e.subject == "frank"]
    assert events[0].action == "user add" and events[0].data["namespace"] == "credit"
    signed = events[0].data["signed"]
    assert '"namespace":"credit"' in signed["payload"]  # the admin signed the scope, not only the roles
    assert events[-1].action == "role revoke" and events[-1].data["namespace"] == "credit"
    result = team("carol").audit_verify(trust=team.trust.path)
    assert result.ok, result.findings
    detail = team("carol").user_detail("frank")
    assert [(g.label, g.active) for g in detail.grants] == [("reviewer@credit", True), ("risk@credit", False)]
    assert detail.user.roles == ("reviewer@credit",)


def test_widening_a_scoped_grant_in_the_database_is_caught(team, two) -> None:
    """An operator deletes the row that scopes frank's grant, making him a reviewer of everything."""
    frank = _member(team, "frank", ["reviewer"])
    attacker = Attacker(team("alice"))
    attacker.execute("DELETE FROM role_grant_scopes")
    assert "risk/model" in [r.name for r in frank.ls()]  # the registry reads what the database says...
    result = team("carol").audit_verify(trust=team.trust.path)
    assert not result.ok  # ...and audit verify names the deleted fact
    assert [f.kind for f in result.findings] == ["fact-deleted"]
    assert "role_grant_scopes row" in result.findings[0].message


def test_a_forged_approval_by_a_reviewer_of_another_namespace_is_unauthorised(team, two) -> None:
    """An approval event for risk/model by frank (reviewer of credit only) appended to the chain: the replay
    knows frank could not approve there."""
    _member(team, "frank", ["reviewer"])
    attacker = Attacker(team("alice"))
    attacker.append_event("frank", "approve", two["risk/model"], {"comment": "forged"})
    result = team("carol").audit_verify()
    kinds = {f.kind: f.message for f in result.findings}
    assert "unauthorised" in kinds and "none of it for risk/model" in kinds["unauthorised"], result.findings


def test_the_audit_log_and_report_leave_out_what_a_scoped_user_does_not_see(team, two) -> None:
    frank = _member(team, "frank", ["reviewer"])
    subjects = {e.subject for e in frank.audit_log()}
    assert two["credit/scorer"] in subjects
    assert not {s for s in subjects if s.startswith(("risk/", "plain"))}
    assert "frank" in subjects and "registry" in subjects  # events not about an adapter stay
    assert {e.subject for e in team("bob").audit_log()} >= {two["risk/model"], two["plain"]}
    report = frank.audit_report(format="json")
    assert "risk/model" not in report.content and "plain:1" not in report.content
    assert "credit/scorer" in report.content
    assert "risk/model" in team("bob").audit_report(format="json").content


def test_users_show_whoami_and_their_json_carry_the_scopes(team, two) -> None:
    frank = _member(team, "frank", ["reviewer", "author"])
    info = next(u for u in team("alice").users() if u.name == "frank")
    assert info.roles == ("author@credit", "reviewer@credit")
    assert info.to_dict()["role_scopes"] == [
        {"role": "author", "namespace": "credit"}, {"role": "reviewer", "namespace": "credit"}
    ]  # fmt: skip
    me = frank.whoami()
    assert me.roles == ("author@credit", "reviewer@credit")
    assert me.to_dict()["roles"] == [
        {"role": "author", "namespace": "credit"}, {"role": "reviewer", "namespace": "credit"}
    ]  # fmt: skip
    assert WhoAmI.from_dict(me.to_dict()).roles == me.roles
    assert team("bob").whoami().to_dict()["roles"] == [{"role": "reviewer", "namespace": None}]
    detail = team("alice").user_detail("frank")
    assert UserDetail.from_dict(detail.to_dict()) == detail
    for grant in detail.grants:
        assert GrantInfo.from_dict(grant.to_dict()) == grant
    for key in detail.keys:
        assert KeyInfo.from_dict(key.to_dict()) == key
    assert UserInfo.from_dict(info.to_dict()) == info
    old = {k: v for k, v in info.to_dict().items() if k != "role_scopes"}  # a server of an earlier release
    assert UserInfo.from_dict({**old, "roles": ["reviewer"]}).role_scopes[0].namespace is None


def test_what_may_not_be_scoped_and_what_must_be_named(team) -> None:
    alice = team("alice")
    with pytest.raises(InvalidInput, match="admin is never granted for one namespace"):
        alice.add_user("ivy", roles=["admin"], namespace="credit")
    with pytest.raises(InvalidInput, match="--namespace credit scopes the roles granted"):
        alice.add_user("ivy", namespace="credit")
    with pytest.raises(InvalidInput, match="invalid namespace 'Credit/x'"):
        alice.add_user("ivy", roles=["reviewer"], namespace="Credit/x")
    alice.add_user("ivy", roles=["reviewer"], namespace="credit")
    again = alice.add_user("ivy", roles=["reviewer"], namespace="credit")  # already held: nothing recorded
    assert again.roles == ("reviewer@credit",)
    assert [e.subject for e in alice.audit_log()].count("ivy") == 1
    with pytest.raises(NotFound, match="pass --namespace to revoke reviewer@credit"):
        alice.revoke_role("ivy", "reviewer")
    alice.add_user("ivy", roles=["reviewer"])  # a global grant besides the scoped one
    assert alice.revoke_role("ivy", "reviewer").roles == ("reviewer@credit",)


def test_a_user_confined_to_a_namespace_stays_confined_when_the_grant_is_revoked(team, two) -> None:
    frank = _member(team, "frank", ["reviewer"])
    team("alice").revoke_role("frank", "reviewer", namespace="credit")
    assert frank.ls() == []
    with pytest.raises(NotFound):
        frank.show(two["credit/scorer"])
    # a user registered without any role reads everything, as before scopes
    team("alice").add_user("jo")
    jo = Registry(settings=replace(Settings.from_env(), user="jo"))
    try:
        assert len(jo.ls()) == 3
    finally:
        jo.close()


ACTIONS = sorted(PERMISSIONS)
SCOPED = ["author", "reviewer", "risk", "release-manager", "auditor"]


def test_the_role_action_matrix_of_scoped_grants(sqlite_reg) -> None:
    """For every role granted for credit and every action: on credit/x exactly what the role allows there, on
    risk/x and x nothing (not found; a push refused), on the registry itself nothing (scoped grants do not count) but revoking
    one's own token; a global grant allows what it always did."""
    reg = sqlite_reg  # its actor becomes the admin with the first user added
    for role in SCOPED:
        reg.add_user(f"{role}-scoped", roles=[role], namespace="credit")
        reg.add_user(f"{role}-global", roles=[role])
    identity = reg._identity
    with reg._records.write() as records:
        for role in SCOPED:
            scoped, whole = Actor(f"{role}-scoped"), Actor(f"{role}-global")
            for action in ACTIONS:
                allowed = role in PERMISSIONS[action]
                label = f"{role} {action}"
                if action in REGISTRY_WIDE:
                    _expect(identity, records, scoped, action, None, False, label)
                    _expect(identity, records, whole, action, None, allowed, label)
                    continue
                _expect(identity, records, scoped, action, "credit/x", allowed, label)
                _expect(identity, records, whole, action, "credit/x", allowed, label)
                _expect(identity, records, whole, action, "x", allowed, label)
                for hidden in ("risk/x", "x"):  # not found; a push (which creates) is refused alike either way
                    with pytest.raises(PermissionDenied if action == "push" else NotFound):
                        identity.require(records, scoped, action, hidden)


def _expect(identity, records, actor: Actor, action: str, name: str | None, allowed: bool, label: str) -> None:
    if allowed:
        assert identity.require(records, actor, action, name), label
    else:
        with pytest.raises(PermissionDenied):
            identity.require(records, actor, action, name)
