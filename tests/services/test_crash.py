"""A crash or Ctrl-C mid-push leaves no version and no half-written blob under its final name."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from registry import Registry


def _adapter_with_large_file(llama, tmp_path: Path) -> Path:
    d = llama.copy_adapter(tmp_path / "adapter")
    (d / "zz-large.json").write_bytes(os.urandom(24 << 20))  # three 8 MiB chunks: interrupted in the middle
    return d


def _assert_store_sound(reg: Registry) -> None:
    """Every blob under its final name is complete (hashes to its name)."""
    root = reg._blobs.root / "sha256"
    for blob in root.rglob("*") if root.exists() else []:
        if blob.is_file():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


@pytest.mark.local_store  # S3's interrupted uploads: tests/storage/test_s3.py
def test_ctrl_c_during_a_blob_leaves_no_version(reg: Registry, llama, tmp_path: Path) -> None:
    d = _adapter_with_large_file(llama, tmp_path)

    def ctrl_c(label: str, done: int, total: int) -> None:
        if label == "zz-large.json" and done >= 8 << 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reg.push(d, name="a", progress=ctrl_c)
    assert reg.ls() == []
    _assert_store_sound(reg)
    large = hashlib.sha256((d / "zz-large.json").read_bytes()).hexdigest()
    assert not reg._blobs.exists(large)
    assert list((reg._blobs.root / "tmp").iterdir()) == []
    assert reg.push(d, name="a").version == 1  # and the next push starts at 1


_KILL_DURING_BLOB = """
import os, signal, sys
from registry import Registry
def kill(label, done, total):
    if label == "zz-large.json" and done >= 8 << 20:
        os.kill(os.getpid(), signal.SIGKILL)
Registry().push(sys.argv[1], name="a", progress=kill)
"""

_KILL_BEFORE_COMMIT = """
import os, signal, sys
from registry import Registry
from registry.storage.records import Records
def kill(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # inside the write transaction, after the version row was inserted
Records.insert_evals = kill
Registry().push(sys.argv[1], name="a", evals={"accuracy": 0.9})
"""


@pytest.mark.local_store  # S3's interrupted uploads: tests/storage/test_s3.py
@pytest.mark.parametrize("script", [_KILL_DURING_BLOB, _KILL_BEFORE_COMMIT], ids=["during-blob", "before-commit"])
def test_a_killed_push_leaves_no_version(reg: Registry, llama, tmp_path: Path, script: str) -> None:
    d = _adapter_with_large_file(llama, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(d)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert reg.ls() == []
    _assert_store_sound(reg)
    assert reg.push(d, name="a").version == 1  # no gap, no duplicate
    assert [r.version for r in reg.ls()] == [1]


# -- no orphan outlives the next run ----------------------------------------------------------

_KILL_DURING_PULL = """
import os, signal, sys
from registry import Registry
def kill(label, done, total):
    if label == "zz-large.json" and done >= 8 << 20:
        os.kill(os.getpid(), signal.SIGKILL)
Registry().pull("a", sys.argv[1], progress=kill)
"""


def _killed(script: str, arg: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(arg)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _leftovers(directory: Path, prefix: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(prefix) and p.name.endswith(".incomplete"))


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _owned_by(leftover: Path, prefix: str, pid: int) -> Path:
    """A leftover like ``leftover`` (named ``{prefix}{pid}.{host}.{random}.incomplete``) owned by ``pid``."""
    _pid, host, rand = leftover.name[len(prefix) : -len(".incomplete")].split(".")
    other = leftover.with_name(f"{prefix}{pid}.{host}.{rand[::-1]}.incomplete")
    (other.mkdir() if leftover.is_dir() else other.write_bytes(b"partial"))
    return other


def _old_style(directory: Path, name: str, age: float, is_dir: bool) -> Path:
    """A temporary name as older releases made it (no owner), last changed ``age`` seconds ago."""
    path = directory / name
    (path.mkdir() if is_dir else path.write_bytes(b"partial"))
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_killed_pull_leaves_a_leftover_that_the_next_pull_removes(reg: Registry, llama, tmp_path: Path) -> None:
    d = _adapter_with_large_file(llama, tmp_path)
    reg.push(d, name="a")
    pulls = tmp_path / "pulls"
    pulls.mkdir()
    out = pulls / "out"
    _killed(_KILL_DURING_PULL, out)
    (leftover,) = _leftovers(pulls, ".out.")
    assert not out.exists() and (leftover / "zz-large.json").stat().st_size >= 8 << 20  # a real, large orphan
    sleeper = _sleeper()
    try:
        alive = _owned_by(leftover, ".out.", sleeper.pid)  # a pull still running elsewhere on this machine
        stale = _old_style(pulls, ".out.k3v9x0ab.incomplete", age=2 * 3600, is_dir=True)
        recent = _old_style(pulls, ".out.q1w2e3r4.incomplete", age=60, is_dir=True)
        other = _old_style(pulls, ".other.k3v9x0ab.incomplete", age=2 * 3600, is_dir=True)  # another target's
        reg.pull("a", out)
        assert (out / "zz-large.json").read_bytes() == (d / "zz-large.json").read_bytes()
        assert _leftovers(pulls, ".out.") == sorted([alive, recent]) and other.exists()
        assert not stale.exists() and not leftover.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.local_store  # S3's interrupted uploads: tests/storage/test_s3.py
def test_a_killed_push_leaves_a_leftover_that_the_next_push_removes(reg: Registry, llama, tmp_path: Path) -> None:
    d = _adapter_with_large_file(llama, tmp_path)
    _killed(_KILL_DURING_BLOB, d)
    tmp = reg._blobs.root / "tmp"
    (leftover,) = _leftovers(tmp, "")
    assert leftover.stat().st_size >= 8 << 20
    sleeper = _sleeper()
    try:
        alive = _owned_by(leftover, "", sleeper.pid)
        stale = _old_style(tmp, "tmpk3v9x0ab.incomplete", age=2 * 3600, is_dir=False)
        recent = _old_style(tmp, "tmpq1w2e3r4.incomplete", age=60, is_dir=False)
        other_host = _old_style(tmp, f"{os.getpid()}.elsewhere.abcdef.incomplete", age=60, is_dir=False)
        assert reg.push(llama.adapter, name="b").version == 1  # another adapter, the same blob store
        assert _leftovers(tmp, "") == sorted([alive, recent, other_host])
        assert not stale.exists() and not leftover.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_temporary_names_carry_their_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry._io import atomic_write_bytes, temporary_sibling_dir

    with temporary_sibling_dir(tmp_path / "out") as tmp:
        assert tmp.name.startswith(f".out.{os.getpid()}.") and tmp.name.endswith(".incomplete")
    renamed = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        renamed.append(Path(src).name)
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert renamed[0].startswith(f".f.json.{os.getpid()}.") and renamed[0].endswith(".incomplete")
