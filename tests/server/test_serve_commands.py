"""The read commands and token administration over the API: `ls`, `show` and `tokens create/ls/revoke`
answer remotely with the same output, `--json` and exit code as the embedded registry on the server's
database; and the attacks on token administration (a spoofed user, a non-admin, a revoked token, the
operator's first-token bootstrap, another user's token) fail."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import Tiny
from serving import Server
from serving import run_cli as _cli

from registry import Registry


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


def _signing_team(tmp_path: Path) -> dict[str, Path]:
    """alice signs as admin under the regulated policy (signatures required); mallory's key is no one's."""
    with Registry(user="alice") as alice:
        Registry.generate_key(tmp_path, "alice")
        Registry.generate_key(tmp_path, "mallory")
        alice.init(admin="alice", public_key=tmp_path / "alice.pub")
        alice.add_user("bob", roles=["reviewer"], key=tmp_path / "alice.key")
        alice.add_user("dave", roles=["reviewer"], key=tmp_path / "alice.key")
        alice.set_policy("regulated", key=tmp_path / "alice.key")
    return {"alice": tmp_path / "alice.key", "mallory": tmp_path / "mallory.key"}


def test_a_signed_action_is_signed_on_the_client_and_checked_by_the_server(
    server: Server, admin_token: str, tmp_path: Path
) -> None:
    keys = _signing_team(tmp_path)
    token = {"ADAPTERS_TOKEN": admin_token}
    unsigned = _cli("--registry", server.url, "tokens", "create", "bob", env=token)
    assert unsigned.returncode == 3, unsigned.stderr
    assert "requires token create to be signed" in unsigned.stderr and "--key FILE" in unsigned.stderr
    forged = _cli("--registry", server.url, "tokens", "create", "bob", "--key", str(keys["mallory"]), env=token)
    assert forged.returncode == 1 and "is not alice's registered key" in forged.stderr, forged.stderr
    signed = _cli("--registry", server.url, "tokens", "create", "bob", "--key", str(keys["alice"]), "--json", env=token)
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["secret"].startswith("adp_")
    with Registry(user="alice") as alice:
        event = [e for e in alice.audit_log() if e.action == "token create"][-1]
        payload = json.loads(event.payload)
        assert payload["signed"]["key"] == alice.user_detail("alice").keys[-1].fingerprint
        assert json.loads(payload["signed"]["payload"])["subject"] == "bob"
        assert payload["token"] == alice.authenticate(admin_token).id  # the event names the token used
        assert alice.audit_verify().ok  # the chain, with the client's signature, verifies
    assert (
        keys["alice"].read_text().splitlines()[1] not in server.log_path.read_text()
    )  # the private key never travelled


def test_a_client_signature_fits_one_action_at_one_time(server: Server, admin_token: str, tmp_path: Path) -> None:
    """Replayed on another subject, edited, or stale, a signature is refused; nothing is recorded."""
    import base64

    from registry.domain.signing import sign

    keys = _signing_team(tmp_path)
    private = keys["alice"].read_bytes()

    def post(user: str, headers: dict[str, str]) -> tuple[int, Any]:
        body = json.dumps({"user": user}).encode()
        return server.request(
            "POST", "/api/v1/tokens", admin_token, body, {"Content-Type": "application/json", **headers}
        )

    status, asked = post("bob", {"Adapters-Sign": "prepare"})
    assert status == 428 and json.loads(asked["sign"])["subject"] == "bob"
    payload = asked["sign"].encode()

    def signed(p: bytes) -> dict[str, str]:
        return {"Adapters-Signed-Payload": base64.b64encode(p).decode(), "Adapters-Signature": sign(private, p)}

    with Registry(user="alice") as alice:
        before = len(alice.audit_log())
        replayed = post("dave", signed(payload))  # bob's signature on a token for dave
        assert replayed[0] == 409 and "subject changed" in replayed[1]["message"], replayed
        fields = json.loads(payload)
        stale = json.dumps({**fields, "at": "2020-01-01T00:00:00.000000Z"}, sort_keys=True, separators=(",", ":"))
        old = post("bob", signed(stale.encode()))
        assert old[0] == 409 and "from the server's time" in old[1]["message"], old
        tampered = post("bob", {**signed(payload), "Adapters-Signature": sign(keys["mallory"].read_bytes(), payload)})
        assert tampered[0] == 403 and "not alice's registered key" in tampered[1]["message"], tampered
        assert len(alice.audit_log()) == before
        assert post("bob", signed(payload))[0] == 200  # the genuine one, in time
        assert len(alice.audit_log()) == before + 1
