"""What the registry writes respects the umask: a serving process running as another user can read a
pulled or merged adapter under umask 022. Private keys stay 0600 and blobs 0444 whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import Registry


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_pulled_merged_reports_and_keys_follow_the_umask(
    umask: int, sqlite_reg: Registry, llama, tmp_path: Path
) -> None:
    reg = sqlite_reg
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    ref = reg.push(llama.adapter, name="s", base=str(llama.base)).ref
    pulled = reg.pull(ref, tmp_path / "pulled")
    assert _mode(pulled.path) == dir_mode
    for f in pulled.path.iterdir():
        assert _mode(f) == file_mode, f.name
    assert (pulled.path / "adapters-provenance.json").exists()
    merged = tmp_path / "merged"
    reg.merge(ref, out=merged)
    assert _mode(merged) == dir_mode
    assert {_mode(f) for f in merged.rglob("*") if f.is_file()} == {file_mode}
    assert _mode(merged / "adapters-merge.json") == file_mode
    report = reg.audit_report(format="md")
    written = report.save(tmp_path / "report.md")
    assert _mode(Path(written)) == file_mode
    keys = Registry.generate_key(tmp_path / "keys", "alice")
    assert _mode(Path(keys["public_key"])) == file_mode
    assert _mode(Path(keys["private_key"])) == 0o600
    reg.add_user(reg.user, roles=["auditor"])
    reg.audit_checkpoint(tmp_path / "cp.json")
    assert _mode(tmp_path / "cp.json") == file_mode
    registry_key = next(reg.settings.state_dir.rglob("registry.key"))
    assert _mode(registry_key) == 0o600 and _mode(registry_key.with_suffix(".pub")) == file_mode
    blobs = [p for p in (reg._blobs.root / "sha256").rglob("*") if p.is_file()]
    assert blobs and {_mode(b) for b in blobs} == {0o444}
