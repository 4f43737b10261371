"""Load: 16 clients pushing to one name at once, through two `adapters serve` processes on one database
and store, get 16 consecutive versions, none lost, none doubled, each version's files its own."""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import Tiny
from serving import Server

from registry import Registry, RemoteRegistry

CLIENTS = 16


def test_sixteen_concurrent_pushes_across_two_servers_get_sixteen_consecutive_versions(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    dirs = []
    for i in range(CLIENTS):
        d = tmp_path / f"adapter-{i}"
        shutil.copytree(llama.adapter, d)
        (d / "README.md").write_text(f"client {i}\n")  # each push its own content
        dirs.append(d)
    other = Server(tmp_path / "serve-2.log")
    try:
        urls = [server.url, other.url]

        def push(i: int) -> tuple[int, int]:
            with RemoteRegistry(urls[i % 2], admin_token) as remote:
                result = remote.push(dirs[i], name="team/busy", base=str(llama.base))
            return i, result.version

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = dict(pool.map(push, range(CLIENTS)))
    finally:
        other.stop()
    assert sorted(results.values()) == list(range(1, CLIENTS + 1))
    with Registry(user="alice") as alice:
        for i, number in results.items():
            files = {f.path: f for f in alice.show(f"team/busy:{number}").manifest.files}
            readme = (dirs[i] / "README.md").read_bytes()
            assert files["README.md"].sha256 == hashlib.sha256(readme).hexdigest(), (i, number)
        assert [e.subject for e in alice.audit_log("team/busy") if e.action == "push"] == [
            f"team/busy:{n}" for n in range(1, CLIENTS + 1)
        ]
        assert alice.audit_verify().ok
