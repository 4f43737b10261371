"""The client's requests to presigned object-store URLs ride out S3's transient answers (500, 502, 503,
504), as S3's own SDKs do, re-sending the whole body each time; a store that keeps failing is a clear
error naming how often it was tried. The "store" here is a real HTTP server on 127.0.0.1 that fails
on purpose a set number of times (moto cannot be told to fail)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from registry.domain.adapterdir import SourceFile
from registry.errors import StorageError
from registry.remote.calls import transfer
from registry.remote.client import RemoteRegistry


class FlakyStore:
    """Answers ``status`` to the first ``failures`` requests, then 200; keeps every PUT body it got."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures, self.status = failures, status
        self.bodies: list[bytes] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                store.bodies.append(body)
                self._answer(b"")

            def do_GET(self) -> None:
                self._answer(b"the object")

            def _answer(self, payload: bytes) -> None:
                failing = store.failures > 0
                store.failures -= 1
                self.send_response(store.status if failing else 200)
                data = b"<Error><Code>SlowDown</Code></Error>" if failing else payload
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bucket/key"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[RemoteRegistry]:
    monkeypatch.setattr(transfer, "_BACKOFF", 0.01)  # the schedule, not the behaviour: keep the test quick
    with RemoteRegistry("http://127.0.0.1:9", "adp_unused") as client:  # the registry itself is never called
        yield client


def _file(tmp_path: Path, size: int) -> SourceFile:
    path = tmp_path / "adapter_model.safetensors"
    path.write_bytes(bytes(range(256)) * (size // 256))
    st = path.stat()
    return SourceFile(path="adapter_model.safetensors", abspath=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _upload(remote: RemoteRegistry, store: FlakyStore, f: SourceFile) -> None:
    """A presigned PUT of the file, its body a stream of chunks read afresh on every try."""
    remote._s3_request(
        "PUT",
        store.url,
        "upload it",
        body=lambda: transfer._read_chunks(f, None),
        headers={"Content-Length": str(f.size)},
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_transient_answer_is_retried_with_the_whole_body_again(
    remote: RemoteRegistry, tmp_path: Path, status: int
) -> None:
    store = FlakyStore(failures=2, status=status)
    f = _file(tmp_path, 3 << 20)  # several chunks, so the body is a stream that must be read afresh
    try:
        _upload(remote, store, f)
    finally:
        store.close()
    expected = hashlib.sha256(Path(f.abspath).read_bytes()).hexdigest()
    assert [hashlib.sha256(b).hexdigest() for b in store.bodies] == [expected] * 3


def test_a_store_that_keeps_failing_is_a_clear_error_after_the_last_try(remote: RemoteRegistry) -> None:
    store = FlakyStore(failures=100, status=503)
    try:
        with pytest.raises(StorageError, match=r"refused to download it: 503 \(tried 4 times\).*Pull again"):
            remote._s3_request("GET", store.url, "download it")
    finally:
        store.close()
    assert store.failures == 100 - transfer._ATTEMPTS


def test_a_refusal_that_is_not_transient_is_not_retried(remote: RemoteRegistry, tmp_path: Path) -> None:
    store = FlakyStore(failures=100, status=403)
    f = _file(tmp_path, 1024)
    try:
        with pytest.raises(StorageError, match=r"refused to upload it: 403 <Error>.*Push again") as caught:
            _upload(remote, store, f)
    finally:
        store.close()
    assert "tried" not in str(caught.value)
    assert len(store.bodies) == 1
