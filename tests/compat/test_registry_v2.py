"""A registry of schema 2 (tests/fixtures/registry-v2, made by commit 54be015 with
tests/fixtures/make_registry_v2.py) is read as it is, upgraded to the current schema by its first
write (the tables for role revocations, user removals, tags and notes of schema 3, the API tokens
of schema 4 and the grants' namespaces of schema 5 are created, in one audited event), and verifies
against its trust file and checkpoint before and after, scoped grants added to it included."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from registry import Registry, Settings
from registry.storage.db import SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry-v2"


@pytest.fixture
def v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "v2"
    shutil.copytree(FIXTURE, copy)
    monkeypatch.setenv("ADAPTERS_HOME", str(copy / "home"))
    monkeypatch.setenv("ADAPTERS_STATE_DIR", str(copy / "state"))
    monkeypatch.setenv("ADAPTERS_CONFIG_DIR", str(copy / "config"))
    return copy


def _as(user: str, fixture: Path) -> Registry:
    return Registry(settings=replace(Settings.from_env(), user=user, key=fixture / "keys" / f"{user}.key"))


def test_a_schema_2_registry_reads_upgrades_and_verifies(v2: Path) -> None:
    checkpoint, trust = [v2 / "checkpoint-1.json"], v2 / "trust.json"
    with _as("carol", v2) as carol:
        before = carol.audit_verify(checkpoint, trust=trust)
        assert before.ok, before.findings
        assert carol.show("team/summarizer@production").tags == {}  # the table does not exist yet: read as empty
        assert carol.user_detail("bob").grants[0].active
        assert [r.ref for r in carol.ls(channel="production")] == ["team/summarizer:1"]
    with _as("alice", v2) as alice:
        alice.tag("team/summarizer:1", ["team=support"])  # the first write upgrades
        alice.revoke_role("dave", "release-manager", reason="moved teams")
        upgrade = [e for e in alice.audit_log() if e.action == "registry upgrade"]
        assert len(upgrade) == 1
        assert upgrade[0].data["from_schema"] == 2 and upgrade[0].data["schema"] == SCHEMA_VERSION
        assert set(upgrade[0].data["tables_added"]) == {
            "role_revocations", "user_removals", "tags", "notes", "api_tokens", "token_revocations", "token_uses",
            "role_grant_scopes",
        }  # fmt: skip
        after = alice.audit_verify(checkpoint, trust=trust)
        assert after.ok, after.findings
        assert alice.ls(tags=["team=support"])[0].ref == "team/summarizer:1"
        assert alice._db.schema_version == SCHEMA_VERSION


def test_a_schema_2_registry_takes_scoped_grants_and_still_verifies(v2: Path) -> None:
    """The grants written before scopes keep their hashes (their namespace is a row of its own), and a scoped
    grant signed by the admin replays as what it is."""
    checkpoint, trust = [v2 / "checkpoint-1.json"], v2 / "trust.json"
    with _as("alice", v2) as alice:
        alice.add_user("erin", roles=["reviewer"], namespace="team")
        alice.add_user("frank", roles=["reviewer"], namespace="credit")
        assert alice.user_detail("bob").grants[0].namespace is None  # an old grant: the whole registry
        after = alice.audit_verify(checkpoint, trust=trust)
        assert after.ok, after.findings
    with _as("erin", v2) as erin:
        assert [r.ref for r in erin.ls()] == ["team/summarizer:1"]
    with _as("frank", v2) as frank:
        assert frank.ls() == []
