"""The lifecycle, channels, policies, evaluations and annotations through `adapters serve`: the same
`--json` and exit codes as embedded, every rule enforced by the server for the token's user, signed
approvals signed on the client; and the attacks (a spoofed user, a missing role, self-approval under
the regulated policy) fail."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Tiny
from serving import Server
from serving import run_cli as _cli
from serving import run_remote as _remote

from registry import Registry
from registry.domain.roles import PERMISSIONS, ROLES

#: Fields that differ between two runs of the same command (times, digests of different pushes).
_VOLATILE = {"at", "set_at", "digest", "policy_digest", "created_at", "recorded_at", "id"}


def _stable(value: Any) -> Any:
    """``value`` with its run-specific fields and the adapter's name blanked, for comparing two runs."""
    if isinstance(value, dict):
        return {k: (None if k in _VOLATILE else _stable(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        value = value.replace("rem/s", "NAME").replace("emb/s", "NAME")
        value = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?", "TIME", value)
        return re.sub(r"[0-9a-f]{12,64}", "HEX", value)
    return value


def test_the_lifecycle_answers_the_same_remotely_as_embedded(server: Server, admin_token: str, llama: Tiny) -> None:
    """One adapter governed embedded, its twin through the server: every step's --json and exit code agree."""
    with Registry(user="alice") as alice:
        for name in ("emb/s", "rem/s"):
            alice.push(llama.adapter, name=name, base=str(llama.base))
            alice.push(llama.adapter, name=name, base=str(llama.base), evals={"accuracy": 0.8})
    steps = [
        ("review", "{n}:1", "--json"),
        ("approve", "{n}:1", "--comment", "fine", "--json"),
        ("release", "{n}:1", "--channel", "production", "--json"),
        ("review", "{n}:2", "--json"),
        ("approve", "{n}:2", "--json"),
        ("release", "{n}:2", "--channel", "production", "--reason", "better", "--json"),
        ("rollback", "{n}", "--channel", "production", "--json"),
        ("channels", "{n}", "--json"),
        ("channels", "{n}"),
        ("eval", "add", "{n}:2", "--metric", "f1=0.5", "--dataset", "holdout", "--json"),
        ("tag", "{n}:2", "stage=canary", "--json"),
        ("untag", "{n}:2", "stage", "--json"),
        ("note", "{n}:2", "looked at it", "--json"),
        ("policy", "show", "--json"),
        ("policy", "check", "{n}:2", "--json"),
        ("policy", "check", "{n}:2", "--channel", "production"),
        ("deprecate", "{n}:2", "--reason", "old", "--json"),
        ("revoke", "{n}:1", "--reason", "leaked", "--json"),
        ("reject", "{n}:1", "--comment", "no"),  # refused: revoked is final (exit 1, same message)
        ("approve", "{n}:9"),  # no such version
    ]
    for step in steps:
        local = _cli(*(a.format(n="emb/s") for a in step), env={"ADAPTERS_USER": "alice"})
        remote = _remote(server, admin_token, *(a.format(n="rem/s") for a in step))
        assert remote.returncode == local.returncode, (step, local.stderr, remote.stderr)
        assert bool(remote.stdout) == bool(local.stdout), (step, local.stderr, remote.stderr)
        if "--json" in step and local.stdout:
            assert _stable(json.loads(remote.stdout)) == _stable(json.loads(local.stdout)), step
        else:
            assert _stable(remote.stdout) == _stable(local.stdout), step
            if local.returncode:
                assert _stable(remote.stderr.splitlines()[-1]) == _stable(local.stderr.splitlines()[-1]), step
    with Registry(user="alice") as alice:
        shown = alice.show("rem/s:2")
        assert [h.action for h in shown.history] == ["review", "approve", "release", "deprecate"]
        events = [e for e in alice.audit_log("rem/s") if e.action == "approve"]
        token_id = alice.authenticate(admin_token).id
        assert events and all(json.loads(e.payload)["token"] == token_id for e in events)


def test_a_policy_file_is_read_on_the_client_and_recorded_by_the_server(
    server: Server, admin_token: str, tmp_path: Path
) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text("name: strict\napprovals:\n  count: 2\n")
    set_ = _remote(server, admin_token, "policy", "set", str(policy), "--channel", "production", "--json")
    assert set_.returncode == 0, set_.stderr
    assert json.loads(set_.stdout)["scope"] == "channel production"
    shown = json.loads(_remote(server, admin_token, "policy", "show", "--channel", "production", "--json").stdout)
    assert shown["name"] == "strict" and shown["content"] == policy.read_text() and shown["set_by"] == "alice"
    missing = _remote(server, admin_token, "policy", "set", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr


def _people(tmp_path: Path) -> dict[str, str]:
    """One user per role, each with a token; alice (the admin) made them on the server's database."""
    tokens = {}
    with Registry(user="alice") as alice:
        for role in ROLES:
            if role != "admin":
                alice.add_user(f"u-{role}", roles=[role])
                tokens[role] = alice.create_token(f"u-{role}").secret
    return tokens


def test_a_spoofed_user_changes_nothing(server: Server, admin_token: str, llama: Tiny, tmp_path: Path) -> None:
    """bob, an author, claims to be alice (the admin) every way a client could: he is still bob."""
    tokens = _people(tmp_path)
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="team/s", base=str(llama.base))
    author = tokens["author"]
    spoofed = _remote(server, author, "policy", "set", "regulated", ADAPTERS_USER="alice")
    assert spoofed.returncode == 1 and "u-author" in spoofed.stderr and "admin" in spoofed.stderr
    assert "ADAPTERS_USER=alice is ignored" in spoofed.stderr
    status, body = server.request(
        "POST", "/api/v1/versions/team/s:1/release", author, json.dumps({"channel": "production"}).encode(),
        {"Content-Type": "application/json", "X-Adapters-User": "alice", "X-Forwarded-User": "alice"},
    )  # fmt: skip
    assert status == 403 and "u-author" in body["message"]
    with Registry(user="alice") as alice:
        assert alice.channels("team/s") == [] and alice.policy().policy.name == "default"


def test_an_author_cannot_get_their_own_adapter_through_the_regulated_policy(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    """Under the regulated policy (two signed approvals by reviewers other than the author), the author
    tries every command they can reach: approving, signing, approving twice, releasing, minting a
    reviewer's token, registering a key; the version stays in review, every attempt refused."""
    Registry.generate_key(tmp_path, "alice")
    Registry.generate_key(tmp_path, "bob")
    with Registry(user="alice") as alice:
        alice.init(admin="alice", public_key=tmp_path / "alice.pub")
        alice.add_user("bob", roles=["author"], public_key=tmp_path / "bob.pub", key=tmp_path / "alice.key")
        alice.add_user("rita", roles=["reviewer"], key=tmp_path / "alice.key")
        alice.set_policy("regulated", key=tmp_path / "alice.key")
        bob = alice.create_token("bob", key=tmp_path / "alice.key").secret
        alice.acting_as("bob").push(llama.adapter, name="credit/s", base=str(llama.base), evals={"accuracy": 0.9})
    key = str(tmp_path / "bob.key")
    assert _remote(server, bob, "review", "credit/s:1", "--key", key).returncode == 0
    attempts = [
        (("approve", "credit/s:1"), 3),  # unsigned
        (("approve", "credit/s:1", "--key", key), 3),  # the author may not approve
        (("approve", "credit/s:1", "--key", key), 3),  # nor twice
        (("release", "credit/s:1", "--channel", "staging", "--key", key), 1),  # not a release manager
        (("tokens", "create", "rita", "--key", key), 1),  # only admins mint tokens
        (("policy", "set", "default", "--key", key), 1),  # only admins set policies
    ]
    for args, code in attempts:
        result = _remote(server, bob, *args, ADAPTERS_USER="rita")
        assert result.returncode == code, (args, result.stderr)
    with Registry(user="alice") as alice:
        assert alice.show("credit/s:1").state == "in_review"
        assert alice.tokens("rita") == []
        assert alice.show("credit/s:1").approvals == ()
        refused = [e.action for e in alice.audit_log("credit/s:1") if e.action.endswith("refused")]
        assert refused.count("approve refused") == 3


def _calls(ref: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every endpoint that changes something: (permission, method, path, body)."""
    v = f"/api/v1/versions/{ref}"
    return [
        ("review", "POST", f"{v}/review", {}),
        ("release", "POST", f"{v}/release", {"channel": "production"}),
        ("release", "POST", f"{v}/release-check", {"channel": "production"}),
        ("rollback", "POST", "/api/v1/adapters/team/s/rollback", {"channel": "production"}),
        ("deprecate", "POST", f"{v}/deprecate", {}),
        ("revoke", "POST", f"{v}/revoke", {"reason": "matrix"}),
        ("eval add", "POST", f"{v}/evals", {"metrics": [{"metric": "f1", "value": 0.5}]}),
        ("tag", "POST", f"{v}/tags", {"tags": ["k=v"]}),
        ("tag", "POST", f"{v}/untag", {"keys": ["k"]}),
        ("note", "POST", f"{v}/notes", {"text": "hi"}),
        ("policy set", "PUT", "/api/v1/policy", {"content": "name: p\n", "source": "p.yaml"}),
        ("tokens create", "POST", "/api/v1/tokens", {"user": "u-author"}),
    ]


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_the_role_by_action_matrix(server: Server, admin_token: str, llama: Tiny, tmp_path: Path, role: str) -> None:
    """Each role against every endpoint that changes something: 403 exactly where the role table says
    so (another refusal, such as a state that does not allow the action, is not a 403)."""
    tokens = _people(tmp_path)
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="team/s", base=str(llama.base))
    for permission, method, path, body in _calls("team/s:1"):
        status, answer = server.request(
            method, path, tokens[role], json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        allowed = role in PERMISSIONS[permission]
        assert (status != 403) == allowed, (role, permission, status, answer)
        if not allowed:
            assert f"u-{role}" in answer["message"] and answer["exit_code"] == 1
    for path in ("/api/v1/versions", "/api/v1/versions/team/s:1", "/api/v1/adapters/team/s/channels", "/api/v1/policy"):
        assert server.get(path, tokens[role])[0] == 200, (role, path)  # reading needs no role
