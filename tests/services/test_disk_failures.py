"""A full disk, a quota, a read-only filesystem or a directory without write permission: a message
naming the place and the way out, never an 'unexpected OSError', and nothing half-written left behind.

Tests may run as root, whom ``chmod`` does not stop, so most failures are made in-process: the
filesystem calls the registry makes under one directory raise the OSError a full or read-only
filesystem raises. (A ``chmod`` test runs as well when the tests do not run as root.)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from registry import Registry, StorageError

_EXPECTED = {
    errno.ENOSPC: r"has no space left on its device.*free space on it, or",
    errno.EDQUOT: r"is over its disk quota.*free space on it, or",
    errno.EROFS: r"is on a read-only filesystem",
    errno.EACCES: r"is not writable \(permission denied\)",
}
_ERRNOS = pytest.mark.parametrize("err", list(_EXPECTED), ids=[errno.errorcode[e] for e in _EXPECTED])


def _fail(err: int, path: object = None) -> OSError:
    return OSError(err, os.strerror(err), *([os.fspath(path)] if path is not None else []))  # type: ignore[arg-type]


@contextmanager
def failing_writes(monkeypatch: pytest.MonkeyPatch, root: Path, err: int) -> Iterator[None]:
    """Creating, renaming or opening for writing anything under ``root`` fails with ``err``."""
    root = root.absolute()

    def under(path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and Path(os.fsdecode(path)).absolute().is_relative_to(root)

    real_open, real_mkdir, real_replace, real_rename = os.open, os.mkdir, os.replace, os.rename

    def open_(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise _fail(err, path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if under(path):
            raise _fail(err, path)
        return real_mkdir(path, *args, **kwargs)

    def rename(real):  # type: ignore[no-untyped-def]
        def move(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if under(dst):
                raise _fail(err, dst)
            return real(src, dst, *args, **kwargs)

        return move

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "replace", rename(real_replace))
    monkeypatch.setattr(os, "rename", rename(real_rename))
    yield
    monkeypatch.undo()


def _full_disk(monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    """Every data write the registry makes (kernel copy or pwrite) fails with ``err``."""
    import registry._io as io

    def no_room(*args: object, **kwargs: object) -> int:
        raise _fail(err)

    monkeypatch.setattr(io, "_copy_chunk", no_room)
    monkeypatch.setattr(io, "pwrite_all", no_room)


def _assert_store_empty(reg: Registry) -> None:
    assert reg.ls() == []
    root = reg._blobs.root
    assert not (root / "sha256").exists() or not any(p.is_file() for p in (root / "sha256").rglob("*"))
    assert not (root / "tmp").exists() or list((root / "tmp").iterdir()) == []


@pytest.mark.local_store  # the local directory's failures; S3's are in tests/storage/test_s3.py
@_ERRNOS
def test_push_into_a_full_blob_store(reg: Registry, llama, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    _full_disk(monkeypatch, err)
    with pytest.raises(StorageError, match=_EXPECTED[err]) as exc:
        reg.push(llama.adapter, name="a")
    monkeypatch.undo()
    assert f"the blob store {reg._blobs.root}" in str(exc.value) and "ADAPTERS_STORE" in str(exc.value)
    _assert_store_empty(reg)


@pytest.mark.local_store  # the local directory's failures; S3's are in tests/storage/test_s3.py
@_ERRNOS
def test_push_into_a_read_only_blob_store(reg: Registry, llama, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    root = reg._blobs.root
    with failing_writes(monkeypatch, root, err), pytest.raises(StorageError, match=_EXPECTED[err]) as exc:
        reg.push(llama.adapter, name="a")
    assert f"the blob store {root}" in str(exc.value)
    assert "point ADAPTERS_STORE at a writable directory" in str(exc.value)
    _assert_store_empty(reg)


@pytest.mark.local_store  # the local directory's failures; S3's are in tests/storage/test_s3.py
@pytest.mark.skipif(os.geteuid() == 0, reason="chmod does not stop root; the in-process tests above cover it")
def test_push_into_a_chmod_0555_blob_store(reg: Registry, llama) -> None:
    root = reg._blobs.root
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o555)
    try:
        with pytest.raises(StorageError, match=r"is not writable \(permission denied\).*ADAPTERS_STORE"):
            reg.push(llama.adapter, name="a")
    finally:
        root.chmod(0o755)
    _assert_store_empty(reg)


def _assert_nothing_written(parent: Path, out: Path) -> None:
    assert not out.exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temporary sibling


@_ERRNOS
def test_pull_onto_a_full_disk(reg: Registry, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    reg.push(llama.adapter, name="a")
    (tmp_path / "pulls").mkdir()
    out = tmp_path / "pulls" / "out"
    _full_disk(monkeypatch, err)
    with pytest.raises(StorageError, match=_EXPECTED[err]) as exc:
        reg.pull("a", out)
    monkeypatch.undo()
    assert str(tmp_path / "pulls") in str(exc.value) and "choose another output directory" in str(exc.value)
    _assert_nothing_written(tmp_path / "pulls", out)


@_ERRNOS
def test_pull_into_a_read_only_directory(
    reg: Registry, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    reg.push(llama.adapter, name="a")
    (tmp_path / "pulls").mkdir()
    out = tmp_path / "pulls" / "out"
    with failing_writes(monkeypatch, tmp_path / "pulls", err), pytest.raises(StorageError, match=_EXPECTED[err]):
        reg.pull("a", out)
    _assert_nothing_written(tmp_path / "pulls", out)


@pytest.mark.skipif(os.geteuid() == 0, reason="chmod does not stop root; the in-process tests above cover it")
def test_pull_into_a_chmod_0555_directory(reg: Registry, llama, tmp_path: Path) -> None:
    reg.push(llama.adapter, name="a")
    (tmp_path / "pulls").mkdir(mode=0o555)
    try:
        with pytest.raises(StorageError, match=r"is not writable \(permission denied\)"):
            reg.pull("a", tmp_path / "pulls" / "out")
    finally:
        (tmp_path / "pulls").chmod(0o755)


def test_merge_onto_a_full_disk(sqlite_reg: Registry, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.merge.shards as shards

    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    (tmp_path / "merges").mkdir()
    out = tmp_path / "merges" / "out"

    def no_room(*args: object, **kwargs: object) -> None:
        raise _fail(errno.ENOSPC)

    monkeypatch.setattr(shards, "pwrite_all", no_room)
    monkeypatch.setattr(shards, "copy_range", no_room)
    with pytest.raises(StorageError, match=r"merges has no space left on its device.*choose another output"):
        sqlite_reg.merge("a", out=out)
    _assert_nothing_written(tmp_path / "merges", out)
