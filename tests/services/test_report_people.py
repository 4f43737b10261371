"""The audit report's people section, the alert for approvals the author put in place, refused attempts,
and tags and notes, in the JSON report (the HTML and Markdown render the same structure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry import Registry
from registry.errors import PolicyNotMet

ROOT = Path(__file__).resolve().parents[2]


def _ready(team, llama, tmp_path: Path) -> str:
    data = tmp_path / "train.jsonl"
    data.write_text('{"q": 1}\n')
    alice = team("alice")
    ref = alice.push(
        llama.adapter, name="support", base=str(llama.base), quantization="nf4", description="d",
        datasets=[f"name=tickets,license=cc-by-4.0,path={data}"], evals={"accuracy": 0.9},
    ).ref  # fmt: skip
    alice.review(ref)
    assert alice.verify(ref, mode="load", device="cpu").passed
    return ref


def _report(reg) -> dict:
    return json.loads(reg.audit_report(format="json").content)


def test_people_refusals_tags_and_notes_are_in_the_report(team, llama, tmp_path: Path) -> None:
    ref = _ready(team, llama, tmp_path)
    with pytest.raises(PolicyNotMet):
        team("alice").approve(ref)  # the author's own approval: refused, recorded
    team("bob").approve(ref)
    team("carol").approve(ref)
    with pytest.raises(PolicyNotMet):
        team("dave").release(ref, channel="production")  # before staging: refused, recorded
    team("alice").tag(ref, ["team=support"])
    team("carol").note(ref, "risk review minuted in RISK-7")
    team("alice").revoke_role("erin", "reviewer", reason="left the team")
    team("alice").remove_user("erin")
    report = _report(team("carol"))
    people = report["people"]
    assert {u["name"] for u in people["users"]} == {"alice", "bob", "carol", "dave", "erin"}
    erin = next(u for u in people["users"] if u["name"] == "erin")
    assert erin["removed_by"] == "alice"
    revoked = [g for g in people["grants"] if g["user"] == "erin" and g["role"] == "reviewer"]
    assert revoked[0]["revoked_by"] == "alice"
    assert all(k["added_by"] == "alice" for k in people["keys"])
    version = report["adapters"][0]["versions"][0]
    assert [(r["actor"], r["action"]) for r in version["refused"]] == [("alice", "approve"), ("dave", "release")]
    assert version["refused"][1]["channel"] == "production"
    assert version["refused"][1]["rules"][0]["rule"] == "channels:order"
    assert version["tags"] == {"team": "support"} and version["notes"][0]["text"] == "risk review minuted in RISK-7"
    # every reviewer here was registered by alice, the author: the report says so
    independence = [a for a in report["alerts"] if a["kind"] == "independence"]
    assert {a["message"].split(" by ")[1].split(" at ")[0] for a in independence} == {"bob", "carol"}
    html = team("carol").audit_report(format="html").content
    md = team("carol").audit_report(format="md").content
    for text in (html, md):
        assert "granted by alice, the author of support:1" in text
        assert "People" in text and "Refused attempts" in text and "Tags and notes" in text
        assert "risk review minuted in RISK-7" in text and "team=support" in text
        assert "channels:order" in text and "left the team" not in text  # a revocation's reason is in the log
    assert html.index('id="people"') > html.index('class="adapter"')
    assert md.index("## People") > md.index("### support:1")


def test_hostile_notes_and_tags_are_inert_in_the_report(team, llama, tmp_path: Path) -> None:
    ref = _ready(team, llama, tmp_path)
    hostile = "<script>alert(1)</script> [click](javascript:alert(1)) | ![x](http://evil/x.png)"
    team("carol").note(ref, hostile)
    team("alice").tag(ref, {"x": "<img src=x onerror=alert(1)>"})
    html = team("carol").audit_report(format="html").content
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = team("carol").audit_report(format="md").content
    assert "<script>" not in md and "](javascript:" not in md and "![x](" not in md


def test_no_independence_alert_for_approvers_someone_else_registered(team, llama, tmp_path: Path) -> None:
    team("alice").add_user("carol", roles=["admin"])
    Registry.generate_key(team.keys, "ivan")
    team("carol").add_user("ivan", roles=["reviewer"], public_key=team.keys / "ivan.pub")
    ref = _ready(team, llama, tmp_path)
    team("ivan").approve(ref, key=team.key("ivan"))
    report = _report(team("carol"))
    assert not [a for a in report["alerts"] if a["kind"] == "independence"]
