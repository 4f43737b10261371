"""verify, merge and release --merge through `adapters serve`: they run on the client, where the base
is, with the same output, `--json` and exit codes as embedded; the server records the report with the
token's user and the release with the merged files' sha256. And the attacks on what a client submits
(a report about another version, a forged author or time, a skipped probe reference, a reference
nobody measured, a merged checkpoint whose paths leave it) are refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Tiny
from serving import Server
from serving import run_cli as _cli
from serving import run_remote as _remote

from registry import Registry

_POLICY = Path(__file__).resolve().parents[2] / "policies"


def _json(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _report_shape(report: dict[str, Any]) -> dict[str, Any]:
    """What two runs of one verification share: the checks' names and outcomes, the base, the mode."""
    return {
        "keys": sorted(report),
        "checks": [(c["name"], c["passed"]) for c in report["checks"]],
        "base": report["base"],
        "mode": report["mode"],
        "passed": report["passed"],
        "not_checked": report["not_checked"],
    }


def test_verify_runs_on_the_client_and_the_server_records_it_as_the_tokens_user(
    server: Server, admin_token: str, deployment: str, llama: Tiny, tmp_path: Path
) -> None:
    """Every mode on SQLite and a local store; on PostgreSQL and S3 the two ways bytes move (ranged reads
    by presigned URLs, whole downloads)."""
    import tinymodels

    with Registry(user="alice") as alice:
        for name in ("emb/a", "rem/a"):
            alice.push(llama.adapter, name=name, base=str(llama.base))
    other = tinymodels.save_base("llama", tmp_path / "other", seed=9)
    steps = [
        (("--base", str(llama.base), "--mode", "static"), 0),  # ranged reads: through the server, or S3 presigned
        (("--base", str(llama.base), "--mode", "all", "--device", "cpu"), 0),  # downloads, re-hashed; a real load
        (("--base", str(llama.base), "--mode", "load", "--device", "cpu"), 0),  # compared with the first load
        (("--base", str(other), "--mode", "static"), 3),  # another base: the fingerprint check fails
    ]
    if deployment != "sqlite-local":
        steps = steps[:2]
    for args, code in steps:
        local = _cli("verify", "emb/a", *args, "--json", env={"ADAPTERS_USER": "alice"})
        # a spoofed ADAPTERS_USER changes nothing: the report is the token's user's
        remote = _remote(server, admin_token, "verify", "rem/a", *args, "--json", ADAPTERS_USER="mallory")
        assert (local.returncode, remote.returncode) == (code, code), (args, local.stderr, remote.stderr)
        lr, rr = json.loads(local.stdout), json.loads(remote.stdout)
        assert _report_shape(rr) == _report_shape(lr), args
        assert rr["created_by"] == "alice" and rr["id"] is not None
    with Registry(user="alice") as alice:
        reports = alice.show("rem/a:1").verifications
        events = [e for e in alice.audit_log("rem/a:1") if e.action == "verify"]
    expected = [("static", True), ("all", True), ("load", True), ("static", False)][: len(steps)]
    assert [(r.mode, r.passed, r.created_by) for r in reports] == [(m, p, "alice") for m, p in expected]
    assert all(e.actor == "alice" and e.data["token"] for e in events), events
    if deployment != "sqlite-local":
        return
    # the second load was compared with the probe reference the first recorded, through the server
    assert reports[1].reference is None and reports[2].reference is not None
    assert reports[2].reference["recorded_by"] == "alice"
    human = _remote(server, admin_token, "verify", "rem/a", "--base", str(other), "--mode", "static")
    assert human.returncode == 3
    assert "✗ FAIL  base-fingerprint" in human.stdout and "FAILED" in human.stdout


def test_merge_through_the_server_writes_the_same_checkpoint_as_embedded(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="m", base=str(llama.base))
    local = _json(_cli("merge", "m:1", "--out", str(tmp_path / "emb"), "--base", str(llama.base), "--json"))
    remote = _json(_remote(server, admin_token, "merge", "m:1", "--out", str(tmp_path / "rem"), "--base", str(llama.base), "--json"))  # fmt: skip
    assert remote["files"] == local["files"] and remote["tensors"] == local["tensors"]
    for f in remote["files"]:
        assert hashlib.sha256((tmp_path / "rem" / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    with Registry(user="alice") as alice:
        alice.revoke("m:1", reason="leaked")
    refused = _remote(server, admin_token, "merge", "m:1", "--out", str(tmp_path / "again"), "--base", str(llama.base))
    assert refused.returncode == 1 and "is revoked; a revoked version is not merged" in refused.stderr
    assert not (tmp_path / "again").exists()


def test_release_merge_through_the_server_records_the_merged_files(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    ordered = tmp_path / "ordered.yaml"
    ordered.write_text(
        "name: ordered\napprovals: {count: 1, roles: [], distinct: true, author_may_approve: true}\n"
        "channels: {order: [staging, production]}\nsignatures: {required: false}\n"
    )
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="r", base=str(llama.base))
        alice.set_policy(ordered)
        alice.review("r:1")
        alice.approve("r:1")
    out = tmp_path / "merged"
    # production before staging: the server refuses before anything is merged (a policy refusal: exit 3)
    refused = _remote(server, admin_token, "release", "r:1", "--channel", "production", "--merge", "--out", str(out),
                      "--base", str(llama.base))  # fmt: skip
    assert refused.returncode == 3, refused.stderr
    assert not out.exists()
    done = _json(_remote(server, admin_token, "release", "r:1", "--channel", "staging", "--merge", "--out", str(out),
                         "--base", str(llama.base), "--json"))  # fmt: skip
    merged = done["details"]["merged"]
    assert merged["files"] and merged["base"]["fingerprint"] == merged["base"]["recorded_fingerprint"]
    for f in merged["files"]:
        assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    with Registry(user="alice") as alice:
        (move,) = alice.channels("r")[0].history
        release = [e for e in alice.audit_log("r:1") if e.action == "release"][-1]
    assert move.details is not None and move.details["merged"]["files"] == merged["files"]
    assert move.actor == "alice" and release.data["token"] is not None
    again = _json(_remote(server, admin_token, "release", "r:1", "--channel", "staging", "--merge", "--out",
                          str(tmp_path / "unused"), "--base", str(llama.base), "--json"))  # fmt: skip
    assert again["changed"] is False and not (tmp_path / "unused").exists()  # already there: nothing merged


# -- what a client submits, forged ------------------------------------------------------------------------


def _post(server: Server, token: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return server.request("POST", path, token, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def verified(server: Server, admin_token: str, llama: Tiny) -> dict[str, Any]:
    """A version pushed twice (v1, v2), and a genuine passing load report of v1 made through the server."""
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="f", base=str(llama.base))
        alice.push(llama.adapter, name="f", base=str(llama.base), evals={"x": 1})
    done = _remote(server, admin_token, "verify", "f:1", "--base", str(llama.base), "--mode", "load", "--device", "cpu",
                   "--json")  # fmt: skip
    return _json(done)


@pytest.mark.parametrize("deployment", ["sqlite-local"], indirect=True)  # the server's rules, not its store
def test_a_forged_report_is_refused(server: Server, admin_token: str, verified: dict[str, Any]) -> None:
    from registry.domain.clock import now_iso

    fresh = {**verified, "created_at": now_iso(), "reference": None}
    path = "/api/v1/versions/f:1/verifications"
    # about another version (its digest), or another recorded base
    status, body = _post(server, admin_token, "/api/v1/versions/f:2/verifications", {"report": fresh})
    assert status == 422 and "digest differ" in body["message"], body
    forged_base = {**fresh, "base": {**fresh["base"], "recorded_fingerprint": "sha256:" + "0" * 64}}
    status, body = _post(server, admin_token, path, {"report": forged_base})
    assert status == 422 and "base.recorded_fingerprint" in body["message"], body
    # a time from last year
    status, body = _post(server, admin_token, path, {"report": {**fresh, "created_at": "2025-01-01T00:00:00Z"}})
    assert status == 422 and "check this machine's clock" in body["message"], body
    # a load that claims it was compared with no reference, when one is recorded: it skipped the comparison
    status, body = _post(server, admin_token, path, {"report": fresh})
    assert status == 409 and "probe reference" in body["message"], body
    # a new reference from a report that cannot set one (one exists already)
    sample = {"token_ids": [1], "logits": [[0.0]], "hidden": [0.0]}
    q = verified["quantization"]
    settings = f"{q['method']}/dq={int(q['double_quant'])}/{q['compute_dtype']}/{q['device_type']}"
    query = f"/api/v1/probe-references?ref=f:1&fingerprint={verified['base']['fingerprint']}&settings={settings}"
    stored = server.get(query, admin_token)[1]["reference"]
    note = {"id": stored["id"], "recorded_at": stored["created_at"], "recorded_by": stored["created_by"],
            "settings": settings}  # fmt: skip
    compared = {**fresh, "reference": note}
    status, body = _post(server, admin_token, path, {"report": compared, "reference": sample})
    assert status == 422 and "first passing load" in body["message"], body
    # a malformed report
    status, body = _post(server, admin_token, path, {"report": {"name": "f"}})
    assert status == 422 and "malformed" in body["message"], body
    # a forged author is replaced by the caller; nothing of the refused ones was recorded
    status, body = _post(server, admin_token, path, {"report": {**compared, "created_by": "bob"}})
    assert status == 200 and body["created_by"] == "alice", body
    with Registry(user="alice") as alice:
        assert [r.created_by for r in alice.show("f:1").verifications] == ["alice", "alice"]
        assert [r.created_by for r in alice.show("f:2").verifications] == []


#: Forged records of a merged checkpoint, and what the refusal names.
_FORGED_MERGES = [
    ({"files": [{"path": "../../etc/passwd", "sha256": "0" * 64, "size": 1}]}, "leaves the checkpoint"),
    ({"files": [{"path": "model.safetensors", "sha256": "nothex", "size": 1}]}, "is not one"),
    ({"files": [{"path": "model.safetensors", "sha256": "0" * 64, "size": -1}]}, "count of bytes"),
    ({"method": "my-merge"}, "names the method"),
    ({"base": {"name": "b", "fingerprint": "sha256:" + "1" * 64, "recorded_fingerprint": None}}, "recorded base"),
    ({"dtype": "int3"}, "unknown dtype"),
]


@pytest.mark.parametrize("deployment", ["sqlite-local"], indirect=True)  # the server's rules, not its store
def test_a_forged_merge_record_is_refused(server: Server, admin_token: str, llama: Tiny) -> None:
    with Registry(user="alice") as alice:
        pushed = alice.push(llama.adapter, name="g", base=str(llama.base))
        alice.review(pushed.ref)
        alice.approve(pushed.ref)
        recorded = alice.show("g:1").manifest.base.fingerprint
    merged = {
        "out": "/srv/merged", "method": "adapters-streaming-merge/1", "dtype": None, "base_precision": "original",
        "base": {"name": "base", "fingerprint": recorded, "recorded_fingerprint": recorded, "allow_mismatch": False},
        "files": [{"path": "model.safetensors", "sha256": "0" * 64, "size": 10}],
    }  # fmt: skip
    path = f"/api/v1/versions/{pushed.ref}/release"
    for change, fragment in _FORGED_MERGES:
        body = {"channel": "staging", "merged": {"merged": {**merged, **change}, "warnings": []}}
        status, answer = _post(server, admin_token, path, body)
        assert status == 422 and fragment in answer["message"], (change, answer)
    with Registry(user="alice") as alice:
        assert alice.channels("g") == []
    # the well-formed record is accepted, recorded as sent
    status, answer = _post(
        server, admin_token, path, {"channel": "staging", "merged": {"merged": merged, "warnings": []}}
    )
    assert status == 200 and answer["details"]["merged"]["files"] == merged["files"], answer


def test_a_namespace_confined_reviewer_cannot_verify_or_read_another_namespace(
    server: Server, admin_token: str, llama: Tiny
) -> None:
    with Registry(user="alice") as alice:
        alice.push(llama.adapter, name="credit/a", base=str(llama.base))
        alice.push(llama.adapter, name="fraud/a", base=str(llama.base))
        alice.add_user("bob", roles=["reviewer"], namespace="credit")
        bob = alice.create_token("bob").secret
    ok = _remote(server, bob, "verify", "credit/a", "--base", str(llama.base), "--mode", "static")
    assert ok.returncode == 0, ok.stderr
    hidden = _remote(server, bob, "verify", "fraud/a", "--base", str(llama.base), "--mode", "static")
    assert hidden.returncode == 1 and "'fraud/a' does not exist" in hidden.stderr, hidden.stderr
    status, _ = server.get("/api/v1/probe-references?ref=fraud/a:1&fingerprint=x&settings=y", bob)
    assert status == 404


@pytest.mark.parametrize("deployment", ["sqlite-local"], indirect=True)  # the server's rules, not its store
def test_a_verification_under_the_regulated_policy_is_signed_on_the_client(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    """The policy requires signatures: unsigned, the report is refused (exit 3) and nothing recorded; signed
    with bob's own key it is recorded with his signature; signed with a key nobody registered for him, refused (403)."""
    Registry.generate_key(tmp_path, "alice")
    Registry.generate_key(tmp_path, "bob")
    Registry.generate_key(tmp_path, "mallory")
    with Registry(user="alice") as alice:
        alice.init(admin="alice", public_key=tmp_path / "alice.pub")
        alice.add_user("bob", roles=["reviewer"], public_key=tmp_path / "bob.pub", key=tmp_path / "alice.key")
        alice.set_policy("regulated", key=tmp_path / "alice.key")
        bob = alice.create_token("bob", key=tmp_path / "alice.key").secret
        alice.push(llama.adapter, name="credit/s", base=str(llama.base))
    args = ("verify", "credit/s:1", "--base", str(llama.base), "--mode", "static")
    unsigned = _remote(server, bob, *args)
    assert unsigned.returncode == 3 and "signed with bob's registered key" in unsigned.stdout + unsigned.stderr
    forged = _remote(server, bob, *args, "--key", str(tmp_path / "mallory.key"))
    assert forged.returncode == 1 and "is not bob's registered key" in forged.stderr, forged.stderr
    signed = _remote(server, bob, *args, "--key", str(tmp_path / "bob.key"), "--json")
    assert signed.returncode == 0, signed.stderr
    with Registry(user="alice") as alice:
        (report,) = alice.show("credit/s:1").verifications
        (event,) = [e for e in alice.audit_log("credit/s:1") if e.action == "verify"]
        assert report.created_by == "bob" and event.actor == "bob"
        assert alice.audit_verify().ok  # the recorded signature verifies against bob's registered key
