"""`adapters serve` as a real process: health and readiness, the OpenAPI description, tokens on every
API request (none, unknown, revoked, expired), the actor taken from the token whatever the client
says, the JSON access log without secrets, rate-limited failures, `login` with a pinned registry
key, and two server processes on one database and store behaving as one registry."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from serving import Server
from serving import run_cli as _cli

from registry import Registry


def test_health_readiness_and_the_api_description_need_no_token(server: Server) -> None:
    assert server.get("/healthz") == (200, {"status": "ok"})
    status, body = server.get("/readyz")
    assert status == 200 and body == {"status": "ready", "database": "ok", "store": "ok"}
    status, spec = server.get("/openapi.json")
    assert status == 200 and "/api/v1/whoami" in spec["paths"] and spec["info"]["title"] == "adapters registry"


def test_every_api_request_needs_a_valid_token(server: Server, admin_token: str) -> None:
    for token in (None, "", "adp_" + "x" * 43, admin_token[:-1] + ("A" if admin_token[-1] != "A" else "B"), "Basic x"):
        status, body = server.get("/api/v1/whoami", token)
        assert status == 401, (token, body)
        assert "adapters login" in body["message"] and body["exit_code"] == 1
    status, body = server.get("/api/v1/whoami", admin_token)
    assert status == 200 and body["user"] == "alice" and body["roles"] == [{"role": "admin", "namespace": None}]


def test_a_revoked_or_expired_token_is_refused_at_once(server: Server, admin_token: str) -> None:
    alice = Registry(user="alice")
    alice.add_user("bob", roles=["reviewer"])
    bobs = alice.create_token("bob")
    short = alice.create_token("bob", expires="1s")
    assert server.get("/api/v1/whoami", bobs.secret)[0] == 200
    alice.revoke_token(bobs.token.id, reason="laptop lost")
    status, body = server.get("/api/v1/whoami", bobs.secret)  # the next request: no cache to wait for
    assert status == 401 and "was revoked" in body["message"]
    time.sleep(1.2)
    status, body = server.get("/api/v1/whoami", short.secret)
    assert status == 401 and "expired" in body["message"]
    alice.close()


def test_the_actor_is_the_tokens_user_whatever_the_client_says(server: Server, tmp_path: Path) -> None:
    alice = Registry(user="alice")
    alice.add_user("bob", roles=["reviewer"])
    bob = alice.create_token("bob").secret
    alice.close()
    env = {"ADAPTERS_REGISTRY": server.url, "ADAPTERS_TOKEN": bob, "ADAPTERS_USER": "alice"}
    shown = _cli("whoami", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    me = json.loads(shown.stdout)
    assert me["user"] == "bob" and [r["role"] for r in me["roles"]] == ["reviewer"]
    assert "ADAPTERS_USER=alice is ignored" in shown.stderr
    # a header claiming another user changes nothing either
    status, body = server.get("/api/v1/whoami", bob, **{"X-Adapters-User": "alice", "X-Forwarded-User": "alice"})
    assert status == 200 and body["user"] == "bob"


def test_the_access_log_is_json_lines_with_user_and_token_id_and_no_secret(server: Server, admin_token: str) -> None:
    server.get("/api/v1/whoami", admin_token)
    server.get("/api/v1/whoami", "adp_" + "y" * 43)
    lines = server.access_log()
    ok = [entry for entry in lines if entry["path"] == "/api/v1/whoami" and entry["status"] == 200]
    assert ok and ok[-1]["user"] == "alice" and ok[-1]["token"].startswith("tok_")
    assert {"method", "path", "status", "user", "token", "duration_ms"} <= set(ok[-1])
    refused = [entry for entry in lines if entry["status"] == 401]
    assert refused and refused[-1]["user"] is None
    text = server.log_path.read_text()
    assert admin_token not in text and "adp_" + "y" * 43 not in text


def test_failed_authentication_is_rate_limited_per_client(server: Server, admin_token: str) -> None:
    codes = [server.get("/api/v1/whoami", "adp_" + f"{i:043d}")[0] for i in range(25)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    status, body = server.get("/api/v1/whoami", admin_token)  # even a good token waits: the address is limited
    assert status == 429 and "too many failed authentications" in body["message"]


def test_an_oversized_json_body_is_refused_before_it_is_read(server: Server, admin_token: str) -> None:
    """The size is refused from the headers: the server answers before a byte of the body is sent."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(
            (
                "POST /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {admin_token}\r\nContent-Length: {2 << 20}\r\n\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"limit of 1048576 bytes" in body


def test_login_stores_the_token_privately_and_pins_the_registry_key(server: Server, admin_token: str) -> None:
    logged = _cli("login", server.url, "--token-stdin", stdin=admin_token + "\n")
    assert logged.returncode == 0, logged.stderr
    assert f"logged in to {server.url} as alice" in logged.stdout and admin_token not in logged.stdout
    creds = Path(os.environ["ADAPTERS_CONFIG_DIR"]) / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    pinned = json.loads(creds.read_text())["registries"][server.url]["registry_key"]
    assert pinned.startswith("sha256:") and len(pinned) == 71  # the server has its key from its start
    me = _cli("--registry", server.url, "whoami", "--json")
    assert me.returncode == 0 and json.loads(me.stdout)["registry_key"] == pinned
    # another server answering at the address (another registry key): refused unless accepted
    data = json.loads(creds.read_text())
    data["registries"][server.url]["registry_key"] = (
        "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    )
    creds.write_text(json.dumps(data))
    again = _cli("login", server.url, "--token-stdin", stdin=admin_token)
    assert again.returncode == 1 and "--accept-new-registry-key" in again.stderr
    accepted = _cli("login", server.url, "--token-stdin", "--accept-new-registry-key", stdin=admin_token)
    assert accepted.returncode == 0, accepted.stderr
    out = _cli("logout", server.url)
    assert out.returncode == 0 and server.url not in json.loads(creds.read_text())["registries"]
    gone = _cli("--registry", server.url, "whoami")
    assert gone.returncode == 1 and f"adapters login {server.url}" in gone.stderr


def test_a_bad_token_at_login_stores_nothing(server: Server) -> None:
    refused = _cli("login", server.url, "--token-stdin", stdin="adp_" + "z" * 43)
    assert refused.returncode == 1 and "not known to this registry" in refused.stderr
    assert not (Path(os.environ["ADAPTERS_CONFIG_DIR"]) / "credentials.json").exists()


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    from serving import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = _cli("--registry", url, "whoami", env={"ADAPTERS_TOKEN": "adp_" + "a" * 43})
    assert result.returncode == 1 and f"the registry server {url} did not answer" in result.stderr


def test_a_command_the_server_does_not_serve_yet_says_so(server: Server, admin_token: str) -> None:
    result = _cli("--registry", server.url, "fsck", env={"ADAPTERS_TOKEN": admin_token})
    assert result.returncode == 1 and "not served by the registry server yet" in result.stderr


def test_two_server_processes_on_one_database_and_store_are_one_registry(
    server: Server, admin_token: str, tmp_path: Path
) -> None:
    other = Server(tmp_path / "serve-2.log")
    try:
        assert (
            server.get("/api/v1/whoami", admin_token)[1]["registry_id"]
            == other.get("/api/v1/whoami", admin_token)[1]["registry_id"]
        )
        with Registry(user="alice") as alice:
            alice.revoke_token(alice.tokens("alice")[0].id)
        assert server.get("/api/v1/whoami", admin_token)[0] == 401
        assert other.get("/api/v1/whoami", admin_token)[0] == 401
    finally:
        other.stop()
