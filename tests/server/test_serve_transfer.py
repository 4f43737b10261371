"""Push and pull through `adapters serve` (a real server process, on SQLite with a directory and on
PostgreSQL with S3): the same version and the same bytes as embedded, nothing uploaded twice, and the
attacks on uploads (forged bytes, a lying commit, no role, no token, too large, a server killed
mid-push) fail and leave nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Tiny
from serving import ADAPTERS, Server

from registry import Registry, RemoteRegistry
from registry.errors import PermissionDenied, RegistryError, Unauthenticated


def _files(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "adapters-provenance.json"
    }


def _facts(info: Any) -> dict[str, Any]:
    """A version's facts, less what names this version (its name, number, digest, time, author)."""
    d = json.loads(json.dumps(info.to_dict()))
    manifest = d.get("manifest", d)
    for key in ("name", "version", "created_at", "created_by", "digest", "ref"):
        manifest.pop(key, None)
    for key in ("digest", "ref", "name", "version", "history", "evals", "state"):
        d.pop(key, None)
    return d


def _stored_blobs(deployment: str) -> set[str]:
    with Registry() as reg:
        return {b.sha256 for b in reg._blobs.iter_blobs()}


def _token(user: str, roles: list[str]) -> str:
    with Registry(user="alice") as alice:
        alice.add_user(user, roles=roles)
        return alice.create_token(user).secret


def test_push_then_pull_through_the_server_equals_embedded(
    server: Server, admin_token: str, deployment: str, llama: Tiny, tmp_path: Path
) -> None:
    with RemoteRegistry(server.url, admin_token) as remote:
        pushed = remote.push(
            llama.adapter, name="team/remote", base=str(llama.base), evals={"accuracy": 0.9},
            datasets=["name=tickets,license=mit"], quantization="nf4", description="through the server",
        )  # fmt: skip
        assert pushed.ref == "team/remote:1" and pushed.new_bytes == sum(
            p.stat().st_size for p in llama.adapter.rglob("*") if p.is_file()
        )
        again = remote.push(llama.adapter, name="team/remote", base=str(llama.base))
        assert again.version == 2 and again.new_bytes == 0  # every blob was there: nothing uploaded
        pulled = remote.pull("team/remote:1", tmp_path / "remote-pull")
        remote_info = remote.show("team/remote:1")
    with Registry(user="alice") as alice:
        embedded = alice.push(
            llama.adapter, name="team/embedded", base=str(llama.base), evals={"accuracy": 0.9},
            datasets=["name=tickets,license=mit"], quantization="nf4", description="through the server",
        )  # fmt: skip
        alice.pull("team/embedded:1", tmp_path / "embedded-pull")
        embedded_info = alice.show(embedded.ref)
        assert alice.show("team/remote:1").digest == pushed.digest  # the server recorded what it answered
    assert pushed.base == embedded.base and pushed.size == embedded.size and pushed.files == embedded.files
    assert _facts(remote_info) == _facts(embedded_info)
    assert _files(pulled.path) == _files(tmp_path / "embedded-pull") == _files(llama.adapter)
    provenance = json.loads((pulled.path / "adapters-provenance.json").read_text())
    assert provenance["digest"] == pushed.digest and provenance["pulled_by"] == "alice"


def test_the_cli_pushes_and_pulls_through_the_server(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    env = {**os.environ, "ADAPTERS_TOKEN": admin_token}
    env.pop("ADAPTERS_USER", None)
    push = subprocess.run(
        [ADAPTERS, "--registry", server.url, "push", str(llama.adapter), "--name", "cli", "--base", str(llama.base), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr
    assert json.loads(push.stdout)["ref"] == "cli:1"
    pull = subprocess.run(
        [ADAPTERS, "--registry", server.url, "pull", "cli:1", "-o", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert pull.returncode == 0, pull.stderr
    assert _files(tmp_path / "out") == _files(llama.adapter)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _forge(server: Server, token: str, claimed: bytes, sent: bytes) -> tuple[int, Any]:
    """Upload ``sent`` as the blob of ``claimed`` (its sha256 and size), as the server says to."""
    import httpx

    sha = _sha(claimed)
    status, body = server.request(
        "POST", "/api/v1/blobs/missing", token, json.dumps({"blobs": [{"sha256": sha, "size": len(claimed)}]}).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 200 and body["missing"][0]["sha256"] == sha, body
    how = body["missing"][0]["upload"]
    if how["via"] == "server":
        return server.request("PUT", f"/api/v1/blobs/{sha}", token, sent, {"Content-Type": "application/octet-stream"})
    assert how["via"] == "s3"
    httpx.put(how["url"], content=sent, headers=how["headers"])  # moto does not check the checksum; the server does
    return server.request(
        "POST", f"/api/v1/blobs/{sha}/complete", token, json.dumps({"size": len(claimed)}).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip


def test_a_forged_upload_is_refused_and_leaves_nothing(server: Server, admin_token: str, deployment: str) -> None:
    genuine = b"the tokenizer everyone uses\n" * 100
    before = _stored_blobs(deployment)
    status, body = _forge(server, admin_token, genuine, b"X" + genuine[1:])  # other bytes, the same size
    assert status == 422 and "nothing was kept" in body["message"], body
    status, body = _forge(server, admin_token, genuine, genuine[:-1])  # a byte short
    assert status == 422 and "nothing was kept" in body["message"], body
    assert _stored_blobs(deployment) == before  # no blob under its name, no other
    if deployment == "sqlite-local":
        tmp = Path(os.environ["ADAPTERS_HOME"]) / "blobs" / "tmp"
        assert not tmp.exists() or not list(tmp.iterdir())
    if deployment == "postgres-s3":  # forged bytes put to the URL, never confirmed: still missing for the next push
        import httpx

        sha = _sha(genuine)
        ask = json.dumps({"blobs": [{"sha256": sha, "size": len(genuine)}]}).encode()
        _, body = server.request(
            "POST", "/api/v1/blobs/missing", admin_token, ask, {"Content-Type": "application/json"}
        )
        how = body["missing"][0]["upload"]
        httpx.put(how["url"], content=b"Y" + genuine[1:], headers=how["headers"])
        _, body = server.request(
            "POST", "/api/v1/blobs/missing", admin_token, ask, {"Content-Type": "application/json"}
        )
        assert [m["sha256"] for m in body["missing"]] == [sha]
        assert sha not in _stored_blobs(deployment)
    status, body = _forge(server, admin_token, genuine, genuine)  # the genuine bytes are taken
    assert status == 200 and _sha(genuine) in _stored_blobs(deployment)


@pytest.mark.s3
def test_a_wrong_part_of_a_multipart_upload_is_refused(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from registry.storage.blobs.s3 import MULTIPART_THRESHOLD

    monkeypatch.setenv("ADAPTERS_STORE", s3.url())
    with Registry(user="operator") as operator:
        token = operator.create_token("alice", role="admin").secret
    server = Server(tmp_path / "serve.log")
    try:
        data = os.urandom(MULTIPART_THRESHOLD + (1 << 20))
        sha = _sha(data)
        with RemoteRegistry(server.url, token) as remote:
            (missing,) = remote._request(
                "POST", "/api/v1/blobs/missing", json={"blobs": [{"sha256": sha, "size": len(data)}]}
            )["missing"]
            how = missing["upload"]
            assert how["via"] == "s3-multipart"
            size, part = len(data), how["part_size"]
            for number in range(1, -(-size // part) + 1):
                chunk = data[(number - 1) * part : number * part]
                url = remote._request(
                    "POST", f"/api/v1/blobs/{sha}/parts",
                    json={"size": size, "upload_id": how["upload_id"], "number": number, "part_sha256": _sha(chunk)},
                )  # fmt: skip
                assert "x-amz-checksum-sha256" in url["url"].lower() or url["headers"]  # the part's checksum is signed
                sent = chunk if number != 2 else b"\0" * len(chunk)  # part 2 altered on the way
                assert httpx.put(url["url"], content=sent, headers=url["headers"]).status_code < 300
            with pytest.raises(RegistryError, match="nothing was kept"):
                remote._request(
                    "POST", f"/api/v1/blobs/{sha}/complete", json={"size": size, "upload_id": how["upload_id"]}
                )
        with Registry() as reg:
            assert reg._blobs.size(sha) is None  # not under its name
    finally:
        server.stop()


def test_a_commit_that_lies_about_its_files_is_refused(server: Server, admin_token: str, llama: Tiny) -> None:
    with RemoteRegistry(server.url, admin_token) as remote:
        pushed = remote.push(llama.adapter, name="honest", base=str(llama.base))
        files = [f.to_dict() for f in remote.show(pushed.ref).manifest.files]

        def commit(changed: list[dict[str, Any]]) -> RegistryError:
            with pytest.raises(RegistryError) as caught:
                remote._request("POST", "/api/v1/versions", json={"name": "liar", "files": changed})
            return caught.value

        weights = next(f for f in files if f["path"] == "adapter_model.safetensors")
        config = next(f for f in files if f["path"] == "adapter_config.json")
        never_uploaded = {**weights, "sha256": _sha(b"weights nobody uploaded")}
        assert "not in the store" in str(commit([config, never_uploaded]))
        assert "not in the store" in str(commit([config, {**weights, "size": weights["size"] + 1}]))
        swapped = [{**config, "sha256": weights["sha256"], "size": weights["size"]}, weights]
        assert "adapter_config.json" in str(commit(swapped))  # the config's bytes are the weights': not a config
        assert "pickle" in str(commit([*files, {**config, "path": "optimizer.pt"}]))
        assert "relative path" in str(commit([*files, {**config, "path": "../escape.json"}]))
        with pytest.raises(RegistryError, match="fingerprint"):
            remote._request(
                "POST", "/api/v1/versions",
                json={"name": "liar", "files": files, "base": {"name": "x", "fingerprint": "sha256:" + "0" * 64,
                                                              "weights": [{"path": "m.safetensors", "sha256": "1" * 64}]}},
            )  # fmt: skip
    with Registry() as reg:
        assert [v.ref for v in reg.ls()] == ["honest:1"]


def test_who_may_push_is_the_tokens_role(server: Server, admin_token: str, llama: Tiny) -> None:
    viewer = _token("vic", ["auditor"])
    with RemoteRegistry(server.url, viewer) as remote, pytest.raises(RegistryError) as refused:
        remote.push(llama.adapter, name="nope", base=str(llama.base))
    assert getattr(refused.value, "status", None) == 403 and "vic may not push" in str(refused.value)
    assert "author" in str(refused.value)
    with RemoteRegistry(server.url, None) as anonymous, pytest.raises(Unauthenticated):
        anonymous.push(llama.adapter, name="nope")
    status, body = server.request(
        "PUT", f"/api/v1/blobs/{'a' * 64}", None, b"bytes", {"Content-Type": "application/octet-stream"}
    )
    assert status == 401 and "adapters login" in body["message"]
    assert (
        server.request("POST", "/api/v1/blobs/missing", viewer, b'{"blobs": []}', {"Content-Type": "application/json"})[
            0
        ]
        == 403
    )
    with Registry() as reg:
        assert reg.ls() == []


def test_a_blob_over_the_servers_limit_is_refused_with_413(
    deployment: str, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    import socket

    server = Server(tmp_path / "serve.log", env={"ADAPTERS_MAX_BLOB_BYTES": "4096"})
    try:
        with RemoteRegistry(server.url, admin_token) as remote, pytest.raises(RegistryError) as refused:
            remote.push(llama.adapter, name="big", base=str(llama.base))
        assert getattr(refused.value, "status", None) == 413 and "ADAPTERS_MAX_BLOB_BYTES" in str(refused.value)
        # a body announced over the limit is refused from its headers, before a byte of it is sent
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(
                (
                    f"PUT /api/v1/blobs/{'b' * 64} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                    f"Authorization: Bearer {admin_token}\r\nContent-Length: {5 << 30}\r\n\r\n"
                ).encode()
            )
            reply = conn.recv(65536)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        with Registry() as reg:
            assert reg.ls() == []
    finally:
        server.stop()


class _Killing(RemoteRegistry):
    """A client whose server is killed (SIGKILL) at one point of a push."""

    def __init__(self, url: str, token: str, victim: Server, when: str) -> None:
        super().__init__(url, token)
        self.victim, self.when = victim, when
        self.puts = 0

    def _kill(self) -> None:
        self.victim.proc.send_signal(signal.SIGKILL)
        self.victim.proc.wait()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.when == "commit" and path.endswith("/versions"):
            self._kill()
        self.puts += method == "PUT"
        if self.when == "upload" and path.endswith("/complete") and self.puts == 0:  # S3: uploaded, not confirmed
            self._kill()
        if self.when == "upload" and method == "PUT" and self.puts == 2:  # the first blob landed, not the second
            body = kwargs.pop("content")

            def half_then_kill() -> Iterator[bytes]:
                data = b"".join(body)
                yield data[: len(data) // 2]
                self._kill()
                yield data[len(data) // 2 :]

            kwargs["content"] = half_then_kill()
        return super()._request(method, path, **kwargs)


@pytest.mark.parametrize("when", ["upload", "commit"])
def test_a_server_killed_mid_push_leaves_no_version_and_the_retry_succeeds(
    deployment: str, admin_token: str, llama: Tiny, tmp_path: Path, when: str
) -> None:
    first = Server(tmp_path / "serve-1.log")
    try:
        with _Killing(first.url, admin_token, first, when) as client, pytest.raises(RegistryError):
            client.push(llama.adapter, name="survivor", base=str(llama.base))
    finally:
        first.stop()
    with Registry() as reg:
        assert reg.ls() == []
        blobs = {b.sha256 for b in reg._blobs.iter_blobs()}
    second = Server(tmp_path / "serve-2.log")
    try:
        with RemoteRegistry(second.url, admin_token) as remote:
            pushed = remote.push(llama.adapter, name="survivor", base=str(llama.base))
            total = sum(p.stat().st_size for p in llama.adapter.rglob("*") if p.is_file())
            assert pushed.ref == "survivor:1"
            if when == "commit":
                assert pushed.new_bytes == 0 and len(blobs) > 0  # every blob had landed: none sent again
            else:
                assert 0 < pushed.new_bytes < total  # what had landed before the kill is not sent again
            assert _files(remote.pull("survivor:1", tmp_path / "out").path) == _files(llama.adapter)
    finally:
        second.stop()
    if deployment == "sqlite-local":
        tmp = Path(os.environ["ADAPTERS_HOME"]) / "blobs" / "tmp"
        assert not list(tmp.iterdir())  # the killed upload's temporary file was swept by the next one


def test_a_revoked_version_is_refused_as_embedded(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    with Registry(user="alice") as alice:
        pushed = alice.push(llama.adapter, name="withdrawn", base=str(llama.base))
        alice.revoke(pushed.ref, reason="leaked training data")
        with pytest.raises(PermissionDenied) as embedded:
            alice.pull(pushed.ref, tmp_path / "embedded")
    with RemoteRegistry(server.url, admin_token) as remote:
        with pytest.raises(RegistryError) as remote_refusal:
            remote.pull(pushed.ref, tmp_path / "remote")
        assert str(remote_refusal.value) == str(embedded.value)
        assert not (tmp_path / "remote").exists()
        sha = remote.show(pushed.ref).manifest.files[0].sha256
        status, _ = server.get(f"/api/v1/blobs/{sha}?ref={pushed.ref}", admin_token)
        assert status == 403  # nor file by file
        status, _ = server.get(f"/api/v1/blobs/{'c' * 64}?ref={pushed.ref}&allow_revoked=true", admin_token)
        assert status == 404  # a blob of no version asked for is not served
        allowed = remote.pull(pushed.ref, tmp_path / "remote", allow_revoked=True)
        assert _files(allowed.path) == _files(llama.adapter)
