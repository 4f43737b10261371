"""Users through `adapters serve`: admins add users, grant roles (for one namespace too) and register
keys; nobody else can, whatever they claim; a namespace-scoped reviewer cannot see, let alone
approve, another namespace's adapter; `users show` and `ls` answer as embedded."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Tiny
from serving import Server
from serving import run_cli as _cli
from serving import run_remote as _remote

from registry import Registry


def test_an_admin_adds_users_roles_and_keys_remotely(server: Server, admin_token: str, tmp_path: Path) -> None:
    Registry.generate_key(tmp_path, "bob")
    added = _remote(
        server, admin_token, "users", "add", "bob", "--role", "reviewer", "--namespace", "credit",
        "--public-key", str(tmp_path / "bob.pub"), "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with Registry(user="alice") as alice:
        detail = alice.user_detail("bob")
        assert detail.keys[-1].fingerprint == json.loads(added.stdout)["key_fingerprint"]
        event = [e for e in alice.audit_log() if e.subject == "bob"][-1]
        assert event.actor == "alice" and json.loads(event.payload)["token"] == alice.authenticate(admin_token).id
    for args in (("users", "show", "bob", "--json"), ("users", "show", "bob"), ("users", "ls", "--json")):
        local = _cli(*args, env={"ADAPTERS_USER": "alice"})
        remote = _remote(server, admin_token, *args)
        assert (remote.returncode, remote.stdout) == (0, local.stdout), (args, remote.stderr)
    revoked = _remote(server, admin_token, "users", "revoke-role", "bob", "reviewer", "--namespace", "credit")
    assert revoked.returncode == 0, revoked.stderr
    removed = _remote(server, admin_token, "users", "remove", "bob", "--reason", "left", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["removed_by"] == "alice", removed.stdout


def test_only_an_admin_adds_users_or_registers_keys(server: Server, admin_token: str, tmp_path: Path) -> None:
    """bob (a reviewer) tries to add a user, grant himself admin and register a key for himself and for
    someone else, claiming to be alice: each is refused and nothing is recorded."""
    Registry.generate_key(tmp_path, "bob")
    Registry.generate_key(tmp_path, "eve")
    with Registry(user="alice") as alice:
        alice.add_user("bob", roles=["reviewer"])
        bob = alice.create_token("bob").secret
        before = len(alice.audit_log())
    for args in (
        ("users", "add", "eve", "--role", "reviewer"),
        ("users", "add", "bob", "--role", "admin"),
        ("users", "add", "bob", "--public-key", str(tmp_path / "bob.pub")),
        ("users", "add", "alice", "--public-key", str(tmp_path / "eve.pub")),
        ("users", "revoke-role", "alice", "admin"),
        ("users", "remove", "alice"),
    ):
        refused = _remote(server, bob, *args, ADAPTERS_USER="alice")
        assert refused.returncode == 1 and "bob" in refused.stderr and "admin" in refused.stderr, (args, refused.stderr)
    with Registry(user="alice") as alice:
        assert len(alice.audit_log()) == before
        assert alice.user_detail("bob").keys == () and [u.name for u in alice.users()] == ["alice", "bob"]


def test_a_namespace_reviewer_cannot_see_or_approve_another_namespace(
    server: Server, admin_token: str, llama: Tiny
) -> None:
    with Registry(user="alice") as alice:
        alice.add_user("bob", roles=["reviewer"], namespace="credit")
        alice.add_user("carl", roles=["author"])
        carl = alice.acting_as("carl")
        for name in ("credit/scorer", "risk/scorer"):
            carl.push(llama.adapter, name=name, base=str(llama.base))
            carl.review(f"{name}:1")
        bob = alice.create_token("bob").secret
    listed = json.loads(_remote(server, bob, "ls", "--json").stdout)
    assert [r["ref"] for r in listed] == ["credit/scorer:1"]
    for args in (("show", "risk/scorer:1"), ("approve", "risk/scorer:1"), ("channels", "risk/scorer")):
        hidden = _remote(server, bob, *args)
        missing = _remote(server, bob, *[a.replace("risk/scorer", "risk/scorex") for a in args])
        assert hidden.returncode == missing.returncode == 1, (args, hidden.stderr)
        # not found, not forbidden: the answer for an adapter that exists is the one for an adapter that does not
        assert hidden.stderr.replace("risk/scorer", "X") == missing.stderr.replace("risk/scorex", "X"), args
    status, body = server.get("/api/v1/versions/risk/scorer:1", bob)
    assert status == 404 and "risk/scorer" in body["message"]
    approved = _remote(server, bob, "approve", "credit/scorer:1", "--json")
    assert approved.returncode == 0 and json.loads(approved.stdout)["state"] == "approved", approved.stderr
    with Registry(user="alice") as alice:
        assert alice.show("risk/scorer:1").state == "in_review"
