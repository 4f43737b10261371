import hashlib
import os
from pathlib import Path

import pytest

from registry.storage.blobs import open_blob_store
from registry.storage.blobs.local import LocalBlobStore as BlobStore


def test_put_stores_under_the_sha256_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    data = os.urandom(3 * (8 << 20) + 123)  # several chunks and a tail
    src = tmp_path / "f"
    src.write_bytes(data)
    first = store.put(src)
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == len(data) and first.new
    assert store.path(first.sha256).read_bytes() == data
    assert not os.access(store.path(first.sha256), os.W_OK) or os.geteuid() == 0  # stored read-only
    assert oct(store.path(first.sha256).stat().st_mode & 0o777) == oct(0o444)
    again = store.put(src)
    assert again.sha256 == first.sha256 and not again.new
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_export_rehashes_what_it_writes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    src = tmp_path / "f"
    src.write_bytes(b"hello" * 1000)
    blob = store.put(src)
    path = store.path(blob.sha256)
    path.chmod(0o644)
    with open(path, "r+b") as f:  # flip one byte in place: the name now lies
        f.seek(10)
        f.write(b"X")
    sha, size = store.export(blob.sha256, tmp_path / "out")
    assert size == blob.size
    assert sha != blob.sha256
    assert sha == hashlib.sha256((tmp_path / "out").read_bytes()).hexdigest()


def test_empty_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    (tmp_path / "empty").write_bytes(b"")
    blob = store.put(tmp_path / "empty")
    assert blob.sha256 == hashlib.sha256(b"").hexdigest() and blob.size == 0


def test_interrupted_put_leaves_nothing_under_a_final_name(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    src = tmp_path / "big"
    src.write_bytes(os.urandom(5 * (8 << 20)))

    def interrupt(label: str, done: int, total: int) -> None:
        if done >= 8 << 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.put(src, progress=interrupt)
    assert not (tmp_path / "store" / "sha256").exists() or not any((tmp_path / "store" / "sha256").rglob("*"))
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_urls_other_than_local_are_refused_with_a_hint(tmp_path: Path) -> None:
    from registry import StorageError

    with pytest.raises(StorageError, match="not supported; give a directory path or a file:// URL"):
        open_blob_store("gs://bucket/prefix")
