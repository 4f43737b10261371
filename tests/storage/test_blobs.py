import hashlib
import os
from pathlib import Path

import pytest

from registry.storage.blobs import open_blob_store
from registry.storage.blobs.local import LocalBlobStore as BlobStore  # the local implementation


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

    with pytest.raises(StorageError, match="not supported; give a directory path, a file:// URL or s3://BUCKET"):
        open_blob_store("gs://bucket/prefix")


def test_open_blob_store_takes_a_path_or_a_file_url(tmp_path: Path) -> None:
    from registry import BlobStore

    by_path = open_blob_store(tmp_path / "a")
    by_url = open_blob_store(f"file://{tmp_path / 'a'}")
    assert isinstance(by_path, BlobStore) and isinstance(by_url, BlobStore)
    src = tmp_path / "f"
    src.write_bytes(b"x" * 100)
    blob = by_path.put(src)
    assert by_url.exists(blob.sha256) and by_url.size(blob.sha256) == 100
    assert by_url.read_range(blob.sha256, 10, 5) == b"xxxxx"
    with by_url.open(blob.sha256) as f:
        assert f.read() == b"x" * 100
    assert [b.sha256 for b in by_url.iter_blobs()] == [blob.sha256]


def test_a_missing_blob_is_named(tmp_path: Path) -> None:
    from registry import BlobMissing

    store = open_blob_store(tmp_path / "s")
    with pytest.raises(BlobMissing, match=r"0{64} is missing from the blob store"):
        store.open("0" * 64)
    with pytest.raises(BlobMissing):
        store.export("0" * 64, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_registry_uses_the_blob_store_it_is_given(tmp_path: Path, llama) -> None:
    """Registry(blob_store=...) writes and reads through the injected store, not ADAPTERS_STORE."""
    from registry import Registry

    class Counting(BlobStore):  # the local store, counting what passes through it
        puts = exports = 0

        def put(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            type(self).puts += 1
            return super().put(*args, **kwargs)

        def export(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            type(self).exports += 1
            return super().export(*args, **kwargs)

    store = Counting(tmp_path / "injected")
    with Registry(tmp_path / "home", blob_store=store) as reg:
        pushed = reg.push(llama.adapter, name="a", base=str(llama.base))
        reg.pull("a:1", tmp_path / "out")
        assert reg.describe()["store"] == str(tmp_path / "injected")
    assert Counting.puts == pushed.files and Counting.exports == pushed.files
    assert not (tmp_path / "home" / "blobs").exists()
    assert {b.sha256 for b in store.iter_blobs()} == {f.sha256 for f in reg.show("a:1").manifest.files}


@pytest.mark.parametrize("kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_read_range_gives_what_the_blob_holds_and_nothing_past_its_end(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """The contract on every store: at most ``length`` bytes from ``start``, fewer (or none) where the
    blob ends first; a caller expecting a size tells a truncated blob by the length it gets back."""
    store = open_blob_store(request.getfixturevalue("s3").url() if kind == "s3" else tmp_path / "s")
    src = tmp_path / "f"
    src.write_bytes(bytes(range(100)))
    sha = store.put(src).sha256
    try:
        assert store.read_range(sha, 0, 8) == bytes(range(8))
        assert store.read_range(sha, 90, 20) == bytes(range(90, 100))  # ends first: what there is
        assert store.read_range(sha, 100, 8) == b""  # starts at the end (S3 says InvalidRange)
        assert store.read_range(sha, 500, 8) == b""
        assert store.read_range(sha, 3, 0) == b""
    finally:
        store.close()
