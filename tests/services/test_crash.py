"""A crash or Ctrl-C mid-push leaves no version and no half-written blob under its final name."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
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
