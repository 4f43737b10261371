"""The read commands and token administration over the API: `ls`, `show` and `tokens create/ls/revoke`
answer remotely with the same output, `--json` and exit code as the embedded registry on the server's
database; and the attacks on token administration (a spoofed user, a non-admin, a revoked token, the
operator's first-token bootstrap, another user's token) fail."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import Tiny
from serving import ADAPTERS, Server

from registry import Registry


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ADAPTERS, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def _both(
    server: Server, token: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The command embedded (as alice, on the server's database) and remotely (with ``token``)."""
    embedded = _cli(*args, env={"ADAPTERS_USER": "alice"})
    remote = _cli("--registry", server.url, *args, env={"ADAPTERS_TOKEN": token})
    return embedded, remote


def _team(admin: str = "alice") -> str:
    """bob, a reviewer, with a token; dave, an admin who never had one."""
    with Registry(user=admin) as alice:
        alice.add_user("bob", roles=["reviewer"])
        alice.add_user("dave", roles=["admin"])
        return alice.create_token("bob").secret


def test_ls_show_and_audit_log_answer_the_same_remotely_as_embedded(
    server: Server, admin_token: str, llama: Tiny
) -> None:
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="team/summarizer", base=str(llama.base), evals={"accuracy": 0.9})
        alice.push(llama.adapter, name="team/summarizer", base=str(llama.base), evals={"accuracy": 0.7})
        alice.tag("team/summarizer:2", ["stage=canary"])
    for args in (
        ("ls", "--json"),
        ("ls",),
        ("ls", "team/*", "--latest", "--json"),
        ("ls", "--where", "accuracy>=0.8", "--json"),
        ("ls", "--tag", "stage=canary", "--json"),
        ("show", "team/summarizer:1", "--json"),
        ("show", "team/summarizer", "--json"),
        ("show", "team/summarizer:2"),
        ("audit", "log", "--json"),
        ("audit", "log", "team/summarizer:2", "--json"),
        ("audit", "log", "team/summarizer"),
    ):
        embedded, remote = _both(server, admin_token, *args)
        assert embedded.returncode == 0, embedded.stderr
        assert (remote.returncode, remote.stdout) == (0, embedded.stdout), (args, remote.stderr)
    rows = json.loads(_both(server, admin_token, "ls", "--where", "accuracy>=0.8", "--json")[1].stdout)
    assert [r["ref"] for r in rows] == ["team/summarizer:1"]


def test_users_ls_answers_the_same_remotely_as_embedded(server: Server, admin_token: str) -> None:
    _team()
    with Registry(user="alice") as alice:
        alice.remove_user("bob")
    for args in (("users", "ls", "--json"), ("users", "ls"), ("users", "ls", "--all", "--json")):
        embedded, remote = _both(server, admin_token, *args)
        assert embedded.returncode == 0, embedded.stderr
        assert (remote.returncode, remote.stdout) == (0, embedded.stdout), (args, remote.stderr)


def test_a_missing_adapter_is_not_found_remotely_as_embedded(server: Server, admin_token: str) -> None:
    embedded, remote = _both(server, admin_token, "show", "team/nothing:1")
    assert embedded.returncode == remote.returncode == 1
    # the last line: the remote run warns first that the test's ADAPTERS_USER is ignored
    assert remote.stderr.splitlines()[-1] == embedded.stderr.splitlines()[-1]
    assert "adapter 'team/nothing' does not exist" in remote.stderr


def test_tokens_are_created_listed_and_revoked_remotely(server: Server, admin_token: str) -> None:
    _team()
    remote = ["--registry", server.url]
    created = _cli(*remote, "tokens", "create", "bob", "--name", "ci", "--json", env={"ADAPTERS_TOKEN": admin_token})
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    assert token["user"] == "bob" and token["created_by"] == "alice" and token["secret"].startswith("adp_")
    listed = _cli(*remote, "tokens", "ls", "bob", "--json", env={"ADAPTERS_TOKEN": admin_token})
    assert token["id"] in [t["id"] for t in json.loads(listed.stdout)]
    mine = _cli(*remote, "tokens", "ls", "--json", env={"ADAPTERS_TOKEN": token["secret"]})
    assert {t["user"] for t in json.loads(mine.stdout)} == {"bob"}
    revoked = _cli(*remote, "tokens", "revoke", token["id"], "--json", env={"ADAPTERS_TOKEN": admin_token})
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked_by"] == "alice"


def test_a_revoked_token_is_refused_for_token_administration(server: Server, admin_token: str) -> None:
    bob = _team()
    bob_id = server.get("/api/v1/whoami", bob)[1]["token"]["id"]
    with Registry(user="alice") as alice:
        alice.revoke_token(bob_id)
    listed = _cli("--registry", server.url, "tokens", "ls", env={"ADAPTERS_TOKEN": bob})
    assert listed.returncode == 1 and "revoked" in listed.stderr


def test_a_reviewer_cannot_create_a_token_even_claiming_to_be_an_admin(server: Server, admin_token: str) -> None:
    bob = _team()
    env = {"ADAPTERS_TOKEN": bob, "ADAPTERS_USER": "alice"}
    refused = _cli("--registry", server.url, "tokens", "create", "carol", env=env)
    embedded = _cli("tokens", "create", "carol", env={"ADAPTERS_USER": "bob"})
    assert refused.returncode == embedded.returncode == 1
    assert embedded.stderr.strip().splitlines()[-1] in refused.stderr
    headers = {"Content-Type": "application/json", "X-Adapters-User": "alice"}
    status, body = server.request("POST", "/api/v1/tokens", bob, json.dumps({"user": "carol"}).encode(), headers)
    assert status == 403 and body["exit_code"] == 1


def test_a_non_admin_cannot_issue_an_admins_first_token_over_the_api(server: Server, admin_token: str) -> None:
    """The operator's bootstrap (an admin's first token, by direct database access) is not served."""
    bob = _team()
    refused = _cli("--registry", server.url, "tokens", "create", "dave", env={"ADAPTERS_TOKEN": bob})
    assert refused.returncode == 1, refused.stdout
    with Registry(user="alice") as alice:
        assert alice.tokens("dave") == []


def test_revoking_another_users_token_is_not_found(server: Server, admin_token: str) -> None:
    bob = _team()
    alice_id = server.get("/api/v1/whoami", admin_token)[1]["token"]["id"]
    refused = _cli("--registry", server.url, "tokens", "revoke", alice_id, env={"ADAPTERS_TOKEN": bob})
    assert refused.returncode == 1 and f"no token {alice_id!r} of yours" in refused.stderr
    status, _ = server.request(
        "POST", f"/api/v1/tokens/{alice_id}/revoke", bob, b"{}", {"Content-Type": "application/json"}
    )
    assert status == 404
    assert server.get("/api/v1/whoami", admin_token)[0] == 200


def test_signing_over_the_api_is_refused_not_ignored(server: Server, admin_token: str, tmp_path: Path) -> None:
    key = tmp_path / "alice.key"
    key.write_text("not used")
    refused = _cli("--registry", server.url, "tokens", "create", "bob", "--key", str(key),
                   env={"ADAPTERS_TOKEN": admin_token})  # fmt: skip
    assert refused.returncode == 1 and "--key` is not served by the registry server yet" in refused.stderr


def test_under_a_signing_policy_an_unsigned_remote_action_says_what_works(
    server: Server, admin_token: str, tmp_path: Path
) -> None:
    """The server refuses the unsigned action (exit 3, as embedded), and the hint is not the embedded `--key`."""
    with Registry(user="alice") as alice:
        Registry.generate_key(tmp_path, "alice")
        alice.init(admin="alice", public_key=tmp_path / "alice.pub")
        alice.add_user("bob", roles=["reviewer"], key=tmp_path / "alice.key")
        alice.set_policy("regulated", key=tmp_path / "alice.key")
    refused = _cli("--registry", server.url, "tokens", "create", "bob", env={"ADAPTERS_TOKEN": admin_token})
    assert refused.returncode == 3, refused.stderr
    assert "requires token create to be signed" in refused.stderr
    assert "run the command on the server host" in refused.stderr and "set ADAPTERS_KEY" not in refused.stderr
