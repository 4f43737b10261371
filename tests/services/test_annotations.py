"""Tags and notes after push, and the ls filters people reach for first (state, channel, metric, tag),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from attacker import Attacker
from click.testing import CliRunner

from cli.main import cli
from registry import InvalidInput, NotFound
from registry.errors import PermissionDenied


@pytest.fixture
def three(reg, llama):
    """s:1 released to production, s:2 approved, t:1 draft, with evals."""
    reg.push(llama.adapter, name="s", evals={"accuracy": 0.8})
    reg.push(llama.adapter, name="s", evals={"accuracy": 0.95})
    reg.push(llama.adapter, name="t", evals={"accuracy": 0.99, "loss": 0.2})
    for ref in ("s:1", "s:2"):
        reg.review(ref)
        reg.approve(ref)
    reg.release("s:1", channel="production")
    return reg


def _refs(rows) -> list[str]:
    return [r.ref for r in rows]


def test_tags_are_set_changed_removed_and_shown(three) -> None:
    reg = three
    tagged = reg.tag("s:1", ["team=support", "jira:ticket=ML-12"])
    assert tagged.tags == {"jira:ticket": "ML-12", "team": "support"}
    reg.tag("s:1", {"team": "platform"})
    untagged = reg.untag("s:1", ["jira:ticket"])
    assert untagged.tags == {"team": "platform"}
    info = reg.show("s:1")
    assert info.tags == {"team": "platform"}
    assert [(t.key, t.value) for t in info.tag_history] == [
        ("jira:ticket", "ML-12"), ("team", "support"), ("team", "platform"), ("jira:ticket", None),
    ]  # fmt: skip
    assert info.to_dict()["tags"] == {"team": "platform"}
    # the same value again records nothing
    before = len(reg.audit_log())
    reg.tag("s:1", ["team=platform"])
    assert len(reg.audit_log()) == before
    assert [e.action for e in reg.audit_log("s:1")][-3:] == ["tag", "tag", "untag"]
    assert reg.audit_verify().ok


def test_bad_tags_and_notes_are_refused_with_the_way_out(three) -> None:
    reg = three
    with pytest.raises(InvalidInput, match="a tag is KEY=VALUE"):
        reg.tag("s:1", ["team"])
    with pytest.raises(InvalidInput, match="empty value; to remove it: adapters untag"):
        reg.tag("s:1", ["team="])
    with pytest.raises(InvalidInput, match="invalid tag key"):
        reg.tag("s:1", ["-x=1"])
    with pytest.raises(InvalidInput, match="control character"):
        reg.tag("s:1", ["team=a\u202eb"])
    with pytest.raises(NotFound, match=r"s:1 has no tag 'team' \(it has no tags\)"):
        reg.untag("s:1", ["team"])
    with pytest.raises(InvalidInput, match="a note needs some text"):
        reg.note("s:1", "  ")
    with pytest.raises(InvalidInput, match="at most 10000"):
        reg.note("s:1", "x" * 10_001)
    with pytest.raises(NotFound, match="has no version 9; versions are 1-2"):
        reg.tag("s:9", ["team=x"])
    assert reg.show("s:1").tags == {} and reg.show("s:1").notes == ()


def test_notes_are_appended_and_audited(three) -> None:
    reg = three
    reg.note("s:1", "Rolled out to 10% of traffic.\nNo regressions.")
    reg.note("s:1", "Full rollout.")
    notes = reg.show("s:1").notes
    assert [n.text for n in notes] == ["Rolled out to 10% of traffic.\nNo regressions.", "Full rollout."]
    assert notes[0].by == reg.user
    assert reg.show("s:1").manifest.description is None  # the manifest is untouched
    assert reg.audit_log()[-1].action == "note"
    assert reg.audit_verify().ok


def test_an_auditor_may_note_but_not_tag(team, llama) -> None:
    ref = team("alice").push(llama.adapter, name="s", base=str(llama.base)).ref
    team("alice").add_user("audrey", roles=["auditor"])
    auditor = team("audrey")
    with pytest.raises(PermissionDenied, match="audrey may not tag"):
        auditor.tag(ref, ["checked=yes"])
    with pytest.raises(Exception, match="signed"):  # the regulated policy wants it signed; audrey has no key
        auditor.note(ref, "reviewed in the Q3 audit")


def test_tampering_with_tags_and_notes_is_caught(three) -> None:
    reg = three
    reg.tag("s:1", ["team=support"])
    reg.note("s:1", "fine")
    attacker = Attacker(reg)
    attacker.execute("UPDATE tags SET value = ? WHERE key = ?", ("fraud", "team"))
    version = attacker.rows("SELECT id FROM versions ORDER BY id LIMIT 1")[0]["id"]
    attacker.insert(
        "notes", {"version_id": version, "text": "approved by the board", "created_at": "2026-01-01T00:00:00.000000Z",
                  "created_by": "ceo"},
    )  # fmt: skip
    findings = {(f.kind, f.message.split(" row ")[0]) for f in reg.audit_verify().findings}
    assert ("fact-edited", "tags") in findings and ("fact-unrecorded", "notes") in findings


def test_ls_filters_by_state_channel_metric_and_tag(three) -> None:
    reg = three
    reg.tag("s:2", ["team=support"])
    reg.tag("t:1", ["team=search"])
    assert _refs(reg.ls(state="released")) == ["s:1"]
    assert _refs(reg.ls(state="draft")) == ["t:1"]
    assert _refs(reg.ls(state="approved")) == ["s:2"]
    assert _refs(reg.ls(channel="production")) == ["s:1"]
    assert _refs(reg.ls(channel="staging")) == []
    assert _refs(reg.ls(where=["accuracy>=0.9"])) == ["s:2", "t:1"]
    assert _refs(reg.ls(where=["accuracy>=0.9", "loss<0.3"])) == ["t:1"]
    assert _refs(reg.ls(where=["accuracy = 0.8"])) == ["s:1"]
    assert _refs(reg.ls(where=["f1>0"])) == []  # no version has the metric
    assert _refs(reg.ls(tags=["team=support"])) == ["s:2"]
    assert _refs(reg.ls(tags={"team": "nobody"})) == []
    assert _refs(reg.ls("s", where=["accuracy>0.5"], state="approved")) == ["s:2"]
    rows = {r.ref: r for r in reg.ls()}
    assert rows["s:1"].channels == ("production",) and rows["s:2"].channels == ()
    assert rows["s:2"].tags == {"team": "support"}
    # the latest value counts: a later eval moves a version in or out
    reg.add_evals("s:1", {"accuracy": 0.97})
    assert _refs(reg.ls(where=["accuracy>=0.9"])) == ["s:1", "s:2", "t:1"]
    with pytest.raises(InvalidInput, match="write METRIC OP NUMBER"):
        reg.ls(where=["accuracy"])
    with pytest.raises(InvalidInput, match="'high' is not a number"):
        reg.ls(where=["accuracy>high"])
    with pytest.raises(InvalidInput, match="unknown state 'live'"):
        reg.ls(state="live")


def test_ls_json_carries_channels_and_tags_and_the_cli_filters(three) -> None:
    three.tag("s:1", ["team=support"])
    runner = CliRunner()
    rows = json.loads(runner.invoke(cli, ["ls", "--json"]).stdout)
    first = next(r for r in rows if r["ref"] == "s:1")
    assert first["channels"] == ["production"] and first["tags"] == {"team": "support"}
    filtered = runner.invoke(cli, ["ls", "--json", "--channel", "production", "--where", "accuracy>=0.5", "--tag",
                                   "team=support", "--state", "released"])  # fmt: skip
    assert [r["ref"] for r in json.loads(filtered.stdout)] == ["s:1"]
    bad = runner.invoke(cli, ["ls", "--state", "live"])
    assert bad.exit_code == 2 and "live" in bad.stderr
    human = runner.invoke(cli, ["ls"]).stdout
    assert "CHANNELS" in human and "production" in human


def test_tag_untag_and_note_commands(three, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["tag", "s:1", "team=support", "tier=gold", "--json"])
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["tags"] == {"team": "support", "tier": "gold"}
    assert runner.invoke(cli, ["untag", "s:1", "tier"]).exit_code == 0
    assert runner.invoke(cli, ["note", "s:1", "looks good in staging"]).exit_code == 0
    shown = json.loads(runner.invoke(cli, ["show", "s:1", "--json"]).stdout)
    assert shown["tags"] == {"team": "support"} and shown["notes"][0]["text"] == "looks good in staging"
    bad = runner.invoke(cli, ["tag", "s:1", "novalue"])
    assert bad.exit_code == 1 and "a tag is KEY=VALUE" in bad.stderr
