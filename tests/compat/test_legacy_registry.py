"""A registry written by an earlier release (tests/fixtures/legacy-v1, made by commit 19ebc00 with
tests/fixtures/make_legacy_registry.py) is read by this one: listed, shown, pulled, verified, audited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from registry import Registry

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-v1"


@pytest.fixture
def legacy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the legacy registry (the checked-in one is never written)."""
    copy = tmp_path / "legacy"
    shutil.copytree(FIXTURE, copy)
    monkeypatch.setenv("ADAPTERS_HOME", str(copy / "home"))
    monkeypatch.setenv("ADAPTERS_REGISTRY_KEY", str(copy / "home" / "keys" / "registry.key"))
    return copy


def test_an_older_registry_lists_shows_and_pulls(legacy: Path, tmp_path: Path) -> None:
    with Registry(user="alice") as reg:
        rows = reg.ls()
        assert [(r.ref, r.state) for r in rows] == [
            ("plain:1", "deprecated"),
            ("team/summarizer:1", "released"),
            ("team/summarizer:2", "revoked"),
        ]
        info = reg.show("team/summarizer@production")
        assert info.ref == "team/summarizer:1"
        assert [a.signature_valid for a in info.approvals] == [True, True]
        assert [e.metric for e in info.evals] == ["accuracy", "accuracy", "f1"]
        assert {v.mode for v in info.verifications} == {"all"}
        assert info.channels == ("production", "staging")
        merged = [m for m in info.releases if m.details]
        assert merged and merged[0].details is not None and "merged" in merged[0].details
        pulled = reg.pull("team/summarizer@production", tmp_path / "out")
        assert {f.path for f in pulled.files} == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
        with pytest.raises(Exception, match="revoked"):
            reg.pull("team/summarizer:2", tmp_path / "out2")


def test_an_older_registry_verifies_and_reports(legacy: Path) -> None:
    checkpoints = [legacy / "checkpoint-1.json", legacy / "checkpoint-2.json"]
    with Registry(user="erin") as reg:
        result = reg.audit_verify(checkpoints)
        assert result.ok, result.findings
        assert result.events == 23
        report = reg.audit_report(format="json", checkpoints=checkpoints)
        data = json.loads(report.content)
        assert data["integrity"]["ok"] is True
        assert {v["ref"] for a in data["adapters"] for v in a["versions"]} == {
            "plain:1",
            "team/summarizer:1",
            "team/summarizer:2",
        }
        assert (result.unsigned_events, result.initialised_at) == (23, None)  # all before signed governance
    with Registry(user="alice") as reg:
        # the regulated policy requires signatures: a verification report is signed by its actor now
        static = reg.verify("team/summarizer:1", str(legacy / "base"), mode="static", key=legacy / "keys" / "alice.key")
        assert static.passed, static.failures
        after = reg.audit_verify(checkpoints)
        assert after.ok, after.findings
        assert [e.action for e in reg.audit_log()][-2:] == ["registry upgrade", "verify"]


def test_an_older_registry_takes_new_versions(legacy: Path, tmp_path: Path) -> None:
    with Registry(user="alice") as reg:
        source = reg.pull("plain:1", tmp_path / "src")
        result = reg.push(source.path, name="plain", base=str(legacy / "base"))
        assert result.version == 2
        assert reg.audit_verify([legacy / "checkpoint-2.json"]).ok
