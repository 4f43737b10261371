"""Audit reports on a registry populated by a scripted regulated workflow: every field, every format."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from registry import InvalidInput
from reportflow import push_ready, regulated_workflow
from tamper import tampering

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workflow(team, tiny_models, tmp_path: Path):
    """support:1..3 and chat:1, with releases, a rollback, a revocation and a merged release."""
    return regulated_workflow(team, tiny_models, tmp_path)


def test_json_report_of_the_registry_holds_every_fact(workflow, tmp_path: Path) -> None:
    team, _refs = workflow
    report = team("alice").audit_report(format="json")
    d = json.loads(report.content)
    assert d["schema_version"] == 1 and d["kind"] == "registry" and d["title"] == "Audit report: adapter registry"
    assert d["report_sha256"] == report.sha256
    body = {k: v for k, v in d.items() if k != "report_sha256"}
    from registry.domain.canonical import canonical_json, sha256_digest

    assert sha256_digest(canonical_json(body)) == d["report_sha256"]
    assert (
        d["policy"]["name"] == "regulated"
        and d["policy"]["digest"].startswith("sha256:")
        and "approvals:" in d["policy"]["content"]
    )
    assert d["integrity"]["ok"] and d["integrity"]["events"] > 30 and len(d["integrity"]["head"]) == 64
    assert d["integrity"]["checkpoint"]["ok"] and d["integrity"]["checkpoint"]["signature_valid"]
    inventory = {a["name"]: a for a in d["inventory"]}
    assert inventory["support"]["versions"] == 3 and inventory["support"]["states"] == {
        "approved": 1,
        "released": 1,
        "revoked": 1,
    }
    assert inventory["support"]["channels"] == {"production": 1, "staging": 1} and inventory["support"]["owners"] == [
        "alice"
    ]
    assert inventory["chat"]["states"] == {"draft": 1}

    support = next(a for a in d["adapters"] if a["name"] == "support")
    v1, v2, v3 = support["versions"]
    # identity
    assert v1["ref"] == "support:1" and v1["digest"].startswith("sha256:") and v1["created_by"] == "alice"
    assert v1["description"] == "support at accuracy 0.88"
    assert {f["path"] for f in v1["files"]} >= {"adapter_config.json", "adapter_model.safetensors"}
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in v1["files"])
    # the adapter
    assert v1["adapter"]["peft_type"] == "LORA" and v1["adapter"]["r"] == 4 and v1["adapter"]["lora_alpha"] == 8
    assert v1["adapter"]["use_rslora"] is False and v1["adapter"]["use_dora"] is False
    assert (
        v1["adapter"]["trainable_parameters"] > 0
        and "model.layers.0.self_attn.q_proj" in v1["adapter"]["target_modules"]
    )
    # the base
    assert v1["base"]["fingerprint"].startswith("sha256:") and v1["quantization"]["method"] == "nf4"
    # lineage
    dataset = v1["lineage"]["datasets"][0]
    assert (dataset["name"], dataset["license"], dataset["rows"], dataset["revision"]) == (
        "tickets",
        "cc-by-4.0",
        40,
        "2026-10",
    )
    assert len(dataset["sha256"]) == 64
    assert v1["lineage"]["training"] == {"learning_rate": 0.0002, "epochs": 3}
    assert v2["lineage"]["parent"]["version"] == 1 and v2["lineage"]["parent"]["digest"] == v1["digest"]
    kinds = {n["kind"] for n in support["lineage"]["nodes"]}
    assert kinds == {"base", "version", "dataset"}
    assert {"from": "version:support:1", "to": "version:support:2", "kind": "parent"} in support["lineage"]["edges"]
    # evaluation against the policy's threshold
    assert [(e["metric"], e["value"], e["passed"], e["threshold"]) for e in v1["evaluation"]] == [
        ("accuracy", 0.88, True, {"min": 0.85, "max": None})
    ]
    assert [p["value"] for p in support["metrics"]["accuracy"]] == [0.88, 0.91, 0.94]  # latest per version
    # verification
    report1 = v1["verification"][0]
    assert report1["mode"] == "load" and report1["passed"] and report1["device"] == "cpu"
    assert set(report1["libraries"]) >= {"torch", "peft", "bitsandbytes"} and any(
        c["name"] == "adapter-effect" for c in report1["checks"]
    )
    # approvals with their signatures checked again
    assert [(a["actor"], a["roles"], a["decision"], a["signature_valid"]) for a in v1["approvals"]] == [
        ("bob", ["reviewer"], "approve", True),
        ("carol", ["risk"], "approve", True),
    ]
    assert all(a["policy_digest"] == d["policy"]["digest"] for a in v1["approvals"])
    # lifecycle: transitions and channel moves, rollbacks, revocation, merged release
    actions = [(x["kind"], x["action"], x.get("channel")) for x in v2["lifecycle"]]
    assert ("transition", "revoke", None) in actions and ("channel", "release", "production") in actions
    revocation = next(x for x in v2["lifecycle"] if x["action"] == "revoke")
    assert revocation["reason"] == "trained on tickets without consent" and revocation["actor"] == "carol"
    merged = next(x for x in v2["lifecycle"] if x.get("merged"))["merged"]
    assert merged["dtype"] is None and {f["path"] for f in merged["files"]} >= {"model.safetensors", "config.json"}
    assert all(len(f["sha256"]) == 64 for f in merged["files"])
    rollbacks = [x for x in v1["lifecycle"] if x["action"] == "rollback"]
    assert {r["channel"] for r in rollbacks} == {"production", "staging"} and rollbacks[0][
        "reason"
    ] == "complaints about tone"
    production = next(c for c in support["channels"] if c["channel"] == "production")
    assert [(m["action"], m["version"]) for m in production["history"]] == [
        ("release", 1),
        ("release", 2),
        ("rollback", 1),
    ]
    assert all(m["signature_valid"] for m in production["history"])
    # the policy checked per version: support:3 is approved and meets every rule
    assert v3["state"] == "approved" and v3["policy"]["passed"]
    assert {r["rule"] for r in v3["policy"]["results"]} >= {
        "approvals",
        "verification",
        "evals:accuracy",
        "limits:max_rank",
    }
    # a revoked version in a channel's history is a problem shown at the top; so is every approval by a
    # reviewer alice (the admin who registered everyone) put in place for her own versions
    revoked = [a for a in d["alerts"] if a["kind"] == "revoked-in-channel"]
    assert len(revoked) == 2 and all("support:2, now revoked, was served" in a["message"] for a in revoked)
    independence = [a for a in d["alerts"] if a["kind"] == "independence"]
    assert {a["subject"] for a in independence} == {"support:1", "support:2", "support:3"}
    assert len(d["alerts"]) == len(revoked) + len(independence)


def test_html_and_markdown_show_the_key_facts(workflow) -> None:
    team, _refs = workflow
    alice = team("alice")
    data = alice.audit_report(format="json").data
    html = alice.audit_report(format="html").content
    md = alice.audit_report(format="md").content
    v1 = data["adapters"][1]["versions"][0]
    assert data["adapters"][1]["name"] == "support"
    for needle in (v1["digest"], v1["files"][0]["sha256"], v1["base"]["fingerprint"], v1["lineage"]["datasets"][0]["sha256"],
                   "cc-by-4.0", "trained on tickets without consent", "complaints about tone", data["integrity"]["head"],
                   data["policy"]["digest"], "eval report reviewed"):  # fmt: skip
        assert needle in html, needle
        assert needle in md, needle
    # problems come first, before any adapter section
    assert html.index('id="alerts"') < html.index('id="integrity"') < html.index('class="adapter"')
    problems = len(data["alerts"])
    assert f"Problems found ({problems})" in html
    assert md.index(f"## Problems found ({problems})") < md.index("## Integrity")
    assert html.count('<section class="version"') == 4 and md.count("\n### ") == 4
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="lineage"' in html and "```mermaid" in md
    assert html.count('class="chart"') >= 1  # accuracy across support's versions
    # self-contained: nothing loaded from anywhere, a print stylesheet with page breaks between versions
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html) and "<script" not in html
    assert "@media print" in html and "page-break-before: always" in html
    assert "default-src 'none'" in html


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_the_footer_holds_the_reports_own_sha256(workflow, fmt: str) -> None:
    team, _ = workflow
    report = team("alice").audit_report(format=fmt)
    marker = '<footer id="report-sha256">' if fmt == "html" else "<!-- report-sha256 -->"
    head = report.content[: report.content.index(marker)]
    digest = hashlib.sha256(head.encode("utf-8")).hexdigest()
    assert report.sha256 == "sha256:" + digest and digest in report.content[report.content.index(marker) :]


def test_version_and_adapter_reports(workflow) -> None:
    team, refs = workflow
    alice = team("alice")
    one = alice.audit_report(refs["s1"], format="json").data
    assert one["kind"] == "version" and [v["ref"] for a in one["adapters"] for v in a["versions"]] == ["support:1"]
    assert one["inventory"] == []
    adapter = alice.audit_report("support", format="json").data
    assert adapter["kind"] == "adapter" and [v["version"] for v in adapter["adapters"][0]["versions"]] == [1, 2, 3]
    by_channel = alice.audit_report("support@production", format="json").data
    assert by_channel["adapters"][0]["versions"][0]["ref"] == "support:1"
    from registry import NotFound

    with pytest.raises(NotFound):
        alice.audit_report("nope")
    with pytest.raises(InvalidInput, match="not a date"):
        alice.audit_report(since="last tuesday")
    with pytest.raises(InvalidInput, match="use html, md, json"):
        alice.audit_report(format="pdf")


def test_since_and_until_limit_the_window(workflow) -> None:
    team, _refs = workflow
    alice = team("alice")
    everything = alice.audit_report(format="json").data
    future = alice.audit_report(format="json", since="2999-01-01").data
    assert everything["adapters"] and future["adapters"] == []
    until = alice.audit_report(format="json", until="2000-01-01").data
    assert until["adapters"] == [] and until["window"]["until"].startswith("2000-01-01T23:59:59")


def test_a_tampered_registry_shows_the_broken_chain_at_the_top(workflow) -> None:
    team, _refs = workflow
    alice = team("alice")
    with tampering(alice) as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 7"))
    data = alice.audit_report(format="json").data
    assert data["integrity"]["ok"] is False
    assert data["alerts"][0]["kind"] == "audit-chain" and "event 7" in data["alerts"][0]["message"]
    html = alice.audit_report(format="html").content
    alerts = html[html.index('id="alerts"') : html.index('id="integrity"')]
    assert "audit-chain" in alerts and "was edited" in alerts and "CRITICAL" in alerts
    md = alice.audit_report(format="md").content
    assert md.index("audit-chain") < md.index("## Integrity")


def test_an_unverifiable_signature_and_a_failing_released_version_are_flagged(workflow) -> None:
    team, refs = workflow
    alice = team("alice")
    with tampering(alice) as s:  # someone rewrote what bob's approval of support:3 said
        s.execute(
            text(
                "UPDATE approvals SET signed_payload = replace(signed_payload, 'support:3', 'support:9') WHERE actor = 'bob' AND signed_payload LIKE '%support:3%'"
            )
        )
    alice.add_evals(refs["s1"], {"accuracy": 0.5})  # support:1 is released (production), now below the threshold
    alerts = alice.audit_report(format="json").data["alerts"]
    kinds = [(a["kind"], a["subject"]) for a in alerts]
    assert ("signature", "support:3") in kinds
    assert ("policy", "support:1") in kinds
    policy_alert = next(a for a in alerts if a["kind"] == "policy")
    assert "support:1 is released but fails rule evals:accuracy" in policy_alert["message"]


def test_cli_writes_the_report(workflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAPTERS_USER", "alice")
    result = CliRunner().invoke(cli, ["audit", "report"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    written = list(tmp_path.glob("audit-report-*.html"))
    assert len(written) == 1 and written[0].read_text().startswith("<!DOCTYPE html>")
    problems = len(workflow[0]("alice").audit_report(format="json").data["alerts"])
    assert f"{problems} problem(s)" in result.stderr
    out = CliRunner().invoke(
        cli, ["audit", "report", "support:1", "--format", "md", "--out", "-"], catch_exceptions=False
    )
    assert out.stdout.startswith("# Audit report: version support:1")


@pytest.mark.browser
def test_the_html_renders_in_a_real_browser(workflow, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Chromium (Debian package `chromium`; .ci/run installs it)")
    team, _ = workflow
    page = tmp_path / "report.html"
    page.write_text(team("alice").audit_report(format="html").content)
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
        "--v=0", "--hide-scrollbars", "--window-size=1200,2000",
    ]  # fmt: skip
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>Audit report: adapter registry</title>" in dom.stdout
    assert dom.stdout.count('<section class="version"') == 4
    # the rendered page: the chart's axes labelled with numbers, no absent value shown as None
    assert re.search(r'<text class="tick y"[^>]*>0</text>', dom.stdout) and ">version</text>" in dom.stdout
    assert "None" not in dom.stdout and 'class="nowrap"' in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
    assert console == [], console
    shot_dir = Path(os.environ.get("ADAPTERS_SCREENSHOT_DIR", tmp_path))
    shot_dir.mkdir(parents=True, exist_ok=True)
    shot = shot_dir / "audit-report.png"
    taken = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_reports_policy_checks_equal_policy_check_for_every_version(team, tiny_models, tmp_path: Path) -> None:
    """One policy context for governance, `policy check` and the report: under the registry's policy
    and under each channel's own policy, the report says exactly what `policy check --json` says."""
    llama = tiny_models["llama"]
    data = tmp_path / "tickets.jsonl"
    data.write_text('{"q": 1}\n')
    alice, dave = team("alice"), team("dave")
    alice.set_policy(ROOT / "policies" / "default.yaml", channel="canary")  # a channel with a laxer policy
    s1 = push_ready(team, llama.adapter, llama.base, "support", data, 0.9)
    dave.release(s1, channel="staging", key=team.key("dave"))
    dave.release(s1, channel="production", key=team.key("dave"))
    # alice is the author and holds the reviewer role: under canary's default policy she may approve
    draft = alice.push(llama.adapter, name="support", base=str(llama.base), description="for canary").ref
    alice.review(draft)
    alice.set_policy(ROOT / "policies" / "default.yaml")
    alice.approve(draft)
    alice.set_policy(ROOT / "policies" / "regulated.yaml")
    dave.release(draft, channel="canary", key=team.key("dave"))
    alice.push(llama.adapter, name="support", base=str(llama.base), description="still a draft")

    data_json = json.loads(alice.audit_report(format="json").content)
    versions = [v for a in data_json["adapters"] for v in a["versions"]]
    assert [v["ref"] for v in versions] == ["support:1", "support:2", "support:3"]
    for v in versions:
        expected = alice.check_policy(v["ref"]).to_dict()
        assert v["policy"] == {k: expected[k] for k in ("passed", "results")} | {
            "name": expected["policy"],
            "digest": expected["policy_digest"],
        }
        released_to = sorted(
            {e["channel"] for e in v["lifecycle"] if e["kind"] == "channel" and e["action"] == "release"}
        )
        assert [c["channel"] for c in v["channel_policies"]] == released_to
        for c in v["channel_policies"]:
            expected = alice.check_policy(v["ref"], channel=c["channel"]).to_dict()
            assert c == {"channel": c["channel"], "name": expected["policy"], "digest": expected["policy_digest"],
                         "passed": expected["passed"], "results": expected["results"]}  # fmt: skip
    canary = next(c for c in versions[1]["channel_policies"] if c["channel"] == "canary")
    assert canary["name"] == "default" and canary["passed"] is True
    assert versions[1]["policy"]["passed"] is False  # the regulated registry policy is not met by support:2


# -- hostile strings in every user-supplied field ---------------------------------------------

_SCRIPT = "<script>alert(1)</script>"
_IMG = '"><img src=x onerror=alert(1)>'
_HOSTILE = f"{_SCRIPT}{_IMG} | a\nnew line [x](javascript:alert(1)) `tick`"


def _assert_no_raw_html(md: str) -> None:
    assert "<script" not in md.lower() and "<img" not in md.lower(), [
        line for line in md.splitlines() if "<script" in line.lower() or "<img" in line.lower()
    ][:5]
    assert "&lt;script&gt;" in md and "&lt;img src=x" in md  # escaped, still readable


def _assert_tables_intact(md: str) -> None:
    """Every table row has as many cells as its header, and no user text starts a line of its own."""
    head, rest = md.split("<pre>\n", 1)
    lines = head.splitlines() + rest.split("</pre>\n", 1)[1].splitlines()  # the policy text keeps its lines
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            columns = lines[i].count("|")
            assert lines[i + 1].count("|") == columns, lines[i + 1]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                assert lines[i].count("|") == columns, (lines[i - 1], lines[i])
                i += 1
        else:
            allowed = ("<!--", "<details>", "</details>")
            assert not lines[i].startswith(("new line", "<")) or lines[i].startswith(allowed), lines[i]
            i += 1


def _assert_mermaid_intact(md: str) -> None:
    block = md.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0] == "graph LR"
    for line in block[1:]:
        node = re.fullmatch(r'  n\d+(\[\(|\[/|\[)"([^"\[\]()`]*)"(\)\]|/\]|\])', line)
        edge = re.fullmatch(r"  n\d+ (-->|-\.->) n\d+", line)
        assert node or edge, line


def test_hostile_strings_in_every_field_are_escaped_in_markdown(sqlite_reg, llama, tmp_path: Path) -> None:
    reg = sqlite_reg
    d = llama.copy_adapter(tmp_path / "a")
    (d / f"{_SCRIPT.replace('/', '')}{_IMG}.txt").write_text("notes")  # a file name is user input too
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = _HOSTILE  # no --base: the config's (unresolvable) base is recorded
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"# {_HOSTILE.replace(chr(10), ' ')}\nname: '{_IMG}'\ndescription: '{_SCRIPT}'\n")
    reg.set_policy(policy)
    spec = f"name={_SCRIPT},uri={_IMG},license={_SCRIPT},split={_IMG},revision={_SCRIPT}"
    kwargs = dict(description=_HOSTILE, base_revision=_IMG, datasets=[spec], training={_SCRIPT: _IMG, "x": _HOSTILE})
    v1 = reg.push(d, name="a", **kwargs).ref
    reg.add_evals(v1, {"accuracy": 0.9}, dataset=_HOSTILE)
    reg.review(v1, comment=_HOSTILE)
    reg.approve(v1, comment=_HOSTILE)
    reg.release(v1, channel="production", reason=_HOSTILE)
    v2 = reg.push(d, name="a", **kwargs).ref
    reg.review(v2, comment=_IMG)
    reg.approve(v2, comment=_IMG)
    reg.release(v2, channel="production", reason=_IMG)
    reg.rollback("a", channel="production", reason=_HOSTILE)
    reg.revoke(v2, reason=_HOSTILE)
    v3 = reg.push(d, name="a", **kwargs).ref
    reg.review(v3)
    reg.reject(v3, comment=_HOSTILE)
    reg.deprecate(v1, reason=_SCRIPT)

    md = reg.audit_report(format="md").content
    _assert_no_raw_html(md)
    _assert_tables_intact(md)
    _assert_mermaid_intact(md)
    assert md.count("\n### ") == 3 and "## Adapter a" in md


def _poisoned(value: object, key: str = "") -> object:
    """The report with a hostile string added to every string in it (the structural ones excepted)."""
    if isinstance(value, dict):
        return {_poisoned(k, "key") if key == "training" else k: _poisoned(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_poisoned(v, key) for v in value]
    if isinstance(value, str) and key not in ("kind", "id", "from", "to", "key"):
        return value + _HOSTILE
    return value


def test_every_string_of_a_real_report_is_escaped_in_markdown(workflow) -> None:
    from registry.audit.report.markdown import render_markdown

    team, _refs = workflow
    data = team("alice").audit_report(format="json").data
    md = render_markdown(_poisoned(data))
    _assert_no_raw_html(md)
    _assert_tables_intact(md)
    _assert_mermaid_intact(md)
