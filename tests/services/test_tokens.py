"""API tokens: issued by admins (or bootstrapped by the operator), listed without secrets, revoked at
once, refused when expired or revoked; every step an audited fact that `audit verify` replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from attacker import Attacker
from click.testing import CliRunner

from cli.main import cli
from registry import InvalidInput, NotFound, PermissionDenied, Registry, Unauthenticated


def _run(*args: str, user: str | None = None) -> object:
    env = {"ADAPTERS_USER": user} if user else {}
    return CliRunner().invoke(cli, list(args), env=env)


def test_the_operator_bootstraps_an_empty_registry_with_an_admin_token(backend: object) -> None:
    with Registry(user="root") as operator:
        with pytest.raises(InvalidInput, match="tokens create alice --role admin"):
            operator.create_token("alice")
        created = operator.create_token("alice", role="admin", label="first")
        assert created.secret.startswith("adp_") and created.token.user == "alice"
        assert [u.name for u in operator.users()] == ["alice"]  # the operator is not made a user
        assert operator.users()[0].roles == ("admin",)
        assert operator.authenticate(created.secret).id == created.token.id
        events = [(e.action, e.actor, e.subject) for e in operator.audit_log()]
        assert events == [("user bootstrap", "alice", "alice"), ("token bootstrap", "root", "alice")]
        assert created.secret not in json.dumps([e.data for e in operator.audit_log()])
        result = operator.audit_verify()
        assert result.ok, result.findings
        # once there is a user, the operator bootstraps nothing more
        with pytest.raises(InvalidInput, match="has users already"):
            operator.create_token("mallory", role="admin")
        with pytest.raises(PermissionDenied):
            operator.create_token("alice")  # alice has a token now: only an admin issues more


def test_an_initialised_registry_gives_its_admin_a_first_token_then_only_admins_issue(team) -> None:
    with Registry(user="root") as operator:
        first = operator.create_token("alice")  # the admin of `adapters init` had none
    assert team("alice").authenticate(first.secret).user == "alice"
    with pytest.raises(PermissionDenied, match="needs"):
        team("bob").create_token("bob")  # a reviewer issues no tokens, not even their own
    issued = team("alice").create_token("bob", label="ci", expires="12h")  # signed by alice (regulated policy)
    assert issued.token.created_by == "alice"
    event = team("alice").audit_log()[-1]
    assert event.action == "token create" and event.data["signed"]["key"] and event.data["token"] == issued.token.id
    with pytest.raises(NotFound, match="not a user"):
        team("alice").create_token("nobody")
    result = team("carol").audit_verify(trust=team.trust.path)
    assert result.ok, result.findings


def test_lifetimes_are_bounded_and_written_as_durations(team) -> None:
    alice = team("alice")
    Registry(user="root").create_token("alice")
    for bad in ("0s", "367d", "soon", "-1h"):
        with pytest.raises(InvalidInput):
            alice.create_token("bob", expires=bad)
    token = alice.create_token("bob", expires="30m").token
    minutes = (
        __import__("datetime").datetime.fromisoformat(token.expires_at[:-1])
        - __import__("datetime").datetime.fromisoformat(token.created_at[:-1])
    ).total_seconds() / 60
    assert minutes == 30


def test_a_listing_shows_no_secret_and_only_what_the_caller_may_see(team) -> None:
    Registry(user="root").create_token("alice")
    bobs = team("alice").create_token("bob", label="laptop")
    team("alice").create_token("carol", label="ci")
    assert {t.user for t in team("alice").tokens()} == {"alice", "bob", "carol"}
    assert [t.id for t in team("bob").tokens()] == [bobs.token.id]  # bob sees his own only
    with pytest.raises(PermissionDenied, match="only an admin"):
        team("bob").tokens("carol")
    listed = _run("tokens", "ls", "--json", user="alice")
    assert listed.exit_code == 0, listed.stderr  # type: ignore[attr-defined]
    assert bobs.secret not in listed.stdout and "secret" not in listed.stdout  # type: ignore[attr-defined]
    assert {t["state"] for t in json.loads(listed.stdout)} == {"active"}  # type: ignore[attr-defined]


def test_a_revoked_or_expired_token_is_refused_at_once(team) -> None:
    Registry(user="root").create_token("alice")
    bobs = team("alice").create_token("bob")
    carols = team("alice").create_token("carol")
    with pytest.raises(NotFound):  # not his: bob cannot even tell it exists
        team("bob").revoke_token(carols.token.id)
    revoked = team("bob").revoke_token(bobs.token.id, reason="laptop lost")  # his own
    assert revoked.revoked_by == "bob" and revoked.state(revoked.revoked_at) == "revoked"  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated, match="was revoked"):
        team("alice").authenticate(bobs.secret)
    with pytest.raises(InvalidInput, match="revoked already"):
        team("alice").revoke_token(bobs.token.id)
    team("alice").revoke_token(carols.token.id)  # an admin revokes anyone's
    later = Registry(user="alice", clock=lambda: "2099-01-01T00:00:00.000000Z")
    short = team("alice").create_token("dave", expires="1s")
    with pytest.raises(Unauthenticated, match="expired"):
        later.authenticate(short.secret)
    for bad in ("", "adp_" + "x" * 43, short.secret[:-1]):
        with pytest.raises(Unauthenticated):
            team("alice").authenticate(bad)
    later.close()
    assert team("carol").audit_verify(trust=team.trust.path).ok


def test_a_removed_users_tokens_stop_working(team) -> None:
    Registry(user="root").create_token("alice")
    bobs = team("alice").create_token("bob")
    team("alice").remove_user("bob", reason="left")
    with pytest.raises(Unauthenticated, match="removed"):
        team("alice").authenticate(bobs.secret)


def test_a_token_row_inserted_behind_the_registry_is_caught(team, backend: object) -> None:
    """Whoever holds the database can insert a token row; its missing event gives it away."""
    from registry.domain.tokens import new_token, secret_hash

    Registry(user="root").create_token("alice")
    forged = new_token()
    attacker = Attacker(team("alice"))
    attacker.execute(
        "INSERT INTO api_tokens (token_id, user_name, label, secret_sha256, created_at, created_by, expires_at) "
        "VALUES (?, 'alice', 'backdoor', ?, '2026-01-01T00:00:00.000000Z', 'alice', '2099-01-01T00:00:00.000000Z')",
        (forged.id, secret_hash(forged.secret)),
    )
    result = team("carol").audit_verify(trust=team.trust.path)
    assert not result.ok
    assert any("api_tokens" in f.message for f in result.findings), result.findings


def test_the_cli_prints_the_secret_once_on_stdout(team) -> None:
    boot = _run("tokens", "create", "alice", user="root")
    assert boot.exit_code == 0, boot.stderr  # type: ignore[attr-defined]
    secret = boot.stdout.strip()  # type: ignore[attr-defined]
    assert secret.startswith("adp_") and "shown only now" in boot.stderr  # type: ignore[attr-defined]
    made = _run("tokens", "create", "bob", "--name", "ci", "--expires", "12h", "--key", str(team.key("alice")),
                "--json", user="alice")  # fmt: skip
    assert made.exit_code == 0, made.stderr  # type: ignore[attr-defined]
    data = json.loads(made.stdout)  # type: ignore[attr-defined]
    assert data["secret"].startswith("adp_") and data["user"] == "bob" and data["label"] == "ci"
    refused = _run("tokens", "create", "bob", user="bob")
    assert refused.exit_code == 1 and "admin" in refused.stderr  # type: ignore[attr-defined]
    revoked = _run("tokens", "revoke", data["id"], "--key", str(team.key("alice")), user="alice")
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout  # type: ignore[attr-defined]
    bad = _run("tokens", "create", "bob", "--expires", "forever", user="alice")
    assert bad.exit_code == 1 and "is not a duration" in bad.stderr  # type: ignore[attr-defined]


def test_tokens_ls_table(team, tmp_path: Path) -> None:
    Registry(user="root").create_token("alice", label="mine")
    shown = _run("tokens", "ls", user="alice")
    assert shown.exit_code == 0 and "mine" in shown.stdout and "active" in shown.stdout  # type: ignore[attr-defined]
    assert "adp_" not in shown.stdout  # type: ignore[attr-defined]
