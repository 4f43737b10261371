"""`audit checkpoint`, `audit verify` and `audit report` against a server: the registry key stays on the
server, which signs and records checkpoints; the client writes them, keeps a copy, and verifies the
downloaded history itself against its own checkpoints and the registry key pinned at login. The
attacks: a database rewritten after a checkpoint the client holds (an event, a fact row, then a fresh
checkpoint to cover it), a server answering with another registry key, a checkpoint by a user
without the auditor role."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from attacker import Attacker
from conftest import Tiny
from serving import Server
from serving import run_cli as _cli

from registry import Registry
from registry.domain import signing
from registry.domain.audit import signed_checkpoint_fields
from registry.domain.canonical import canonical_json


class Client:
    """A user's machine: its own state and config directories (checkpoints, trust files, the pinned key),
    logged in to the server with a token."""

    def __init__(self, server: Server, token: str, home: Path) -> None:
        self.server = server
        self.state = home / "state"
        self.env = {"ADAPTERS_STATE_DIR": str(self.state), "ADAPTERS_CONFIG_DIR": str(home / "config")}
        logged = _cli("login", server.url, "--token-stdin", env=self.env, stdin=token + "\n")
        assert logged.returncode == 0, logged.stderr

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _cli("--registry", self.server.url, *args, env=self.env)


def _embedded(*args: str) -> subprocess.CompletedProcess[str]:
    """The command on the server's host, as alice, on the server's database and state directory."""
    return _cli(*args, env={"ADAPTERS_USER": "alice"})


def _history(llama: Tiny) -> None:
    with Registry(user="alice") as alice:
        alice.add_user("bob", roles=["reviewer"])
        alice.push(llama.adapter, name="team/sum", base=str(llama.base), evals={"accuracy": 0.9})
        alice.push(llama.adapter, name="team/sum", base=str(llama.base), evals={"accuracy": 0.8})
        alice.review("team/sum:1")
        alice.tag("team/sum:1", ["stage=canary"])


def test_a_checkpoint_through_the_server_is_signed_by_its_registry_key_and_written_here(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    _history(llama)
    client = Client(server, admin_token, tmp_path / "laptop")
    out = tmp_path / "laptop" / "cp.json"
    made = client("audit", "checkpoint", "-o", str(out), "--json")
    assert made.returncode == 0, made.stderr
    embedded = _embedded("audit", "checkpoint", "-o", str(tmp_path / "embedded.json"), "--json")
    assert embedded.returncode == 0, embedded.stderr
    remote_json, embedded_json = json.loads(made.stdout), json.loads(embedded.stdout)
    assert list(remote_json) == list(embedded_json)
    written = json.loads(out.read_text())
    assert list(written) == list(json.loads((tmp_path / "embedded.json").read_text()))
    assert out.read_text() == json.dumps(written, indent=2) + "\n"  # the embedded file's layout
    with Registry(user="alice") as alice:
        key = alice.audit_key()
        events = alice.audit_log()
    assert written["key"] == key["registry_key"] == embedded_json["key"]
    assert written["registry"] == key["registry_id"] and written["size"] == embedded_json["size"] - 1
    assert signing.verify(
        str(key["registry_public_key"]).encode(),
        canonical_json(signed_checkpoint_fields(written)),
        written["signature"],
    )
    kept = sorted((client.state / str(key["registry_id"]) / "checkpoints").glob("checkpoint-*.json"))
    assert [json.loads(k.read_text()) for k in kept] == [written]
    assert remote_json["paths"] == [str(out), str(kept[0])]
    # the event names the authenticated user and the token
    recorded = next(e for e in events if e.action == "audit checkpoint")
    token_id = server.get("/api/v1/whoami", admin_token)[1]["token"]["id"]
    assert recorded.actor == "alice" and recorded.data["token"] == token_id
    # an existing file is refused without --force, as embedded
    again, refused = client("audit", "checkpoint", "-o", str(out)), _embedded("audit", "checkpoint", "-o", str(out))
    assert again.returncode == refused.returncode == 1 and "--force" in again.stderr
    assert again.stderr.splitlines()[-1] == refused.stderr.splitlines()[-1]
    assert client("audit", "checkpoint", "-o", str(out), "--force").returncode == 0


def test_verify_through_the_server_passes_on_an_honest_registry_as_embedded(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    _history(llama)
    client = Client(server, admin_token, tmp_path / "laptop")
    assert client("audit", "checkpoint", "-o", str(tmp_path / "cp.json")).returncode == 0
    with Registry(user="alice") as alice:
        alice.note("team/sum:2", "after the checkpoint")
    remote = client("audit", "verify", "--checkpoint", str(tmp_path / "cp.json"), "--json")
    assert remote.returncode == 0, remote.stderr + remote.stdout
    embedded = _embedded("audit", "verify", "--checkpoint", str(tmp_path / "cp.json"), "--json")
    assert embedded.returncode == 0, embedded.stdout
    mine, theirs = json.loads(remote.stdout), json.loads(embedded.stdout)
    assert list(mine) == list(theirs) and mine["ok"] is True
    for field in ("events", "head", "registry_key", "registry_id", "facts", "signatures", "unsigned_events"):
        assert mine[field] == theirs[field], field
    # the client checked the file given and the copy it kept, both signed by the registry key
    assert [c["ok"] and c["signature_valid"] for c in mine["checkpoints"]] == [True, True]
    assert mine["checkpoints"][1]["path"].startswith(str(client.state))
    text = client("audit", "verify")
    assert text.returncode == 0 and text.stdout.startswith("audit chain intact")
    blobs = client("audit", "verify", "--blobs", "--json")
    assert blobs.returncode == 0, blobs.stdout
    assert (
        json.loads(blobs.stdout)["blobs"]
        == json.loads(_embedded("audit", "verify", "--blobs", "--json").stdout)["blobs"]
    )
    assert "the blob store was checked by the server" in blobs.stderr


@pytest.mark.parametrize("rewrite", ["event", "fact"])
def test_verify_through_the_server_fails_when_the_database_was_rewritten_after_a_checkpoint_held_here(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path, rewrite: str
) -> None:
    """Whoever holds the server's database rewrites history and recomputes every hash; the server even
    signs a fresh checkpoint of the forged log. The checkpoint the client kept catches it."""
    _history(llama)
    client = Client(server, admin_token, tmp_path / "laptop")
    assert client("audit", "checkpoint", "-o", str(tmp_path / "cp.json")).returncode == 0
    with Registry(user="alice") as alice:
        attacker = Attacker(alice)
        if rewrite == "event":
            push = attacker.rows("SELECT seq FROM audit_events WHERE action = 'push' ORDER BY seq")[0]["seq"]
            attacker.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = ?", (push,))
            attacker.rechain()
            expected = "rewritten"
        else:
            attacker.execute("UPDATE evals SET value = 0.99 WHERE metric = 'accuracy'")
            expected = "fact-edited"
    assert client("audit", "checkpoint", "-o", str(tmp_path / "after.json")).returncode == 0
    remote = client("audit", "verify", "--json")
    embedded = _embedded("audit", "verify", "--json")
    assert remote.returncode == embedded.returncode == 3, remote.stderr
    kinds = {f["kind"] for f in json.loads(remote.stdout)["findings"]}
    assert expected in kinds and kinds == {f["kind"] for f in json.loads(embedded.stdout)["findings"]}
    text = client("audit", "verify")
    assert text.returncode == 3 and text.stdout.startswith("AUDIT CHAIN BROKEN")


def test_a_server_answering_with_another_registry_key_is_refused(
    server: Server, admin_token: str, tmp_path: Path
) -> None:
    client = Client(server, admin_token, tmp_path / "laptop")
    assert client("audit", "verify").returncode == 0
    server.stop()
    other = Server(
        tmp_path / "serve-2.log", env={"ADAPTERS_REGISTRY_KEY": str(tmp_path / "other.key")}, port=server.port
    )
    try:
        with Registry(user="alice") as alice:
            before = len(alice.audit_log())
        for args in (("audit", "verify"), ("audit", "checkpoint", "-o", str(tmp_path / "cp.json"))):
            refused = client(*args)
            assert refused.returncode == 1, (args, refused.stdout)
            assert "pinned when you logged in" in refused.stderr
            assert f"adapters login {server.url} --accept-new-registry-key" in refused.stderr
        assert not (tmp_path / "cp.json").exists()
        with Registry(user="alice") as alice:
            assert len(alice.audit_log()) == before  # nothing was recorded
        accepted = _cli(
            "login", server.url, "--token-stdin", "--accept-new-registry-key", env=client.env, stdin=admin_token
        )
        assert accepted.returncode == 0, accepted.stderr
        assert client("audit", "verify").returncode == 0
    finally:
        other.stop()


def test_a_checkpoint_needs_the_auditor_role(server: Server, admin_token: str, tmp_path: Path) -> None:
    with Registry(user="alice") as alice:
        alice.add_user("bob", roles=["reviewer"])
        alice.add_user("carol", roles=["auditor"])
        bob, carol = alice.create_token("bob").secret, alice.create_token("carol").secret
    status, body = server.request("POST", "/api/v1/audit/checkpoints", bob, b"")
    assert status == 403 and "auditor" in body["message"] and body["exit_code"] == 1
    refused = Client(server, bob, tmp_path / "bob")("audit", "checkpoint", "-o", str(tmp_path / "bob.json"))
    embedded = _cli("audit", "checkpoint", "-o", str(tmp_path / "embedded.json"), env={"ADAPTERS_USER": "bob"})
    assert refused.returncode == embedded.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == embedded.stderr.strip().splitlines()[-1]
    assert "auditor" in refused.stderr and not (tmp_path / "bob.json").exists()
    auditor = Client(server, carol, tmp_path / "carol")
    assert auditor("audit", "checkpoint", "-o", str(tmp_path / "carol.json")).returncode == 0
    assert auditor("audit", "verify", "--checkpoint", str(tmp_path / "carol.json")).returncode == 0


def _masked(content: str, fmt: str) -> str:
    """The report without what differs between two runs: its generation time and its own sha256."""
    marker = '<footer id="report-sha256">' if fmt == "html" else "<!-- report-sha256 -->"
    return re.sub(r"([Gg]enerated )\S+( by)", r"\1TIME\2", content[: content.index(marker)])


def test_report_through_the_server_equals_the_embedded_one(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    _history(llama)
    client = Client(server, admin_token, tmp_path / "laptop")
    for args in ((), ("team/sum",), ("team/sum:1", "--since", "2000-01-01"), ("--until", "2000-01-01")):
        remote = client("audit", "report", *args, "--format", "json", "--out", "-")
        embedded = _embedded("audit", "report", *args, "--format", "json", "--out", "-")
        assert remote.returncode == embedded.returncode == 0, remote.stderr
        mine, theirs = json.loads(remote.stdout), json.loads(embedded.stdout)
        for report in (mine, theirs):
            del report["generated_at"], report["report_sha256"]
        assert mine == theirs, args
        assert mine["integrity"]["ok"] is True and mine["registry"]["user"] == "alice"
    for fmt in ("md", "html"):
        remote = client("audit", "report", "--format", fmt, "--out", "-")
        embedded = _embedded("audit", "report", "--format", fmt, "--out", "-")
        assert remote.returncode == embedded.returncode == 0, remote.stderr
        assert _masked(remote.stdout, fmt) == _masked(embedded.stdout, fmt)
    written = client("audit", "report", "team/sum:1", "--format", "md", "--out", str(tmp_path / "r.md"))
    assert written.returncode == 0 and written.stdout.startswith(f"{tmp_path / 'r.md'} (md, sha256:")
    missing = client("audit", "report", "team/none")
    assert missing.returncode == 1 and "team/none" in missing.stderr


def test_a_user_confined_to_namespaces_cannot_export_every_adapters_history(
    server: Server, admin_token: str, tmp_path: Path
) -> None:
    """The export holds every adapter's rows; a reviewer of `credit/` only must not read `risk/`'s through it."""
    with Registry(user="alice") as alice:
        alice.add_user("nina", roles=["reviewer"], namespace="credit")
        nina = alice.create_token("nina").secret
    status, body = server.get("/api/v1/audit/export", nina)
    assert status == 403 and "namespaces credit" in body["message"]
    refused = Client(server, nina, tmp_path / "nina")("audit", "verify")
    assert refused.returncode == 1 and "a role for the whole registry" in refused.stderr
