"""The governance commands: exit codes (3 for a policy not met or a broken chain), JSON, help."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from cli.main import cli
from tamper import tampering

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, user: str | None = None):
    env = {"ADAPTERS_USER": user} if user else None
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_single_user_workflow_and_json_shapes(backend, llama, tmp_path: Path) -> None:
    assert run("push", str(llama.adapter), "--name", "s", "--base", str(llama.base)).exit_code == 0
    review = json.loads(run("review", "s:1", "--json").stdout)
    assert (review["action"], review["previous_state"], review["state"]) == ("review", "draft", "in_review")
    approve = json.loads(run("approve", "s:1", "--comment", "fine", "--json").stdout)
    assert approve["state"] == "approved" and approve["approvals"] == 1 and approve["policy"] == "default"
    release = json.loads(run("release", "s:1", "--channel", "production", "--json").stdout)
    assert release["channel"] == "production" and release["policy_digest"].startswith("sha256:")
    channels = json.loads(run("channels", "s", "--json").stdout)
    assert channels[0]["channel"] == "production" and channels[0]["ref"] == "s:1"
    assert [m["action"] for m in channels[0]["history"]] == ["release"]
    added = json.loads(
        run(
            "eval", "add", "s:1", "--metric", "accuracy=0.7", "--metric", "f1=0.6", "--dataset", "holdout", "--json"
        ).stdout
    )
    assert [(e["metric"], e["dataset"]) for e in added["evals"]] == [("accuracy", "holdout"), ("f1", "holdout")]
    shown = json.loads(run("show", "s@production", "--json").stdout)
    assert shown["state"] == "released" and shown["channels"] == ["production"]
    assert [a["actor"] for a in shown["approvals"]] == ["tester"]
    assert [h["action"] for h in shown["history"]] == ["review", "approve", "release"]
    log = json.loads(run("audit", "log", "s", "--json").stdout)
    assert [e["action"] for e in log] == ["push", "review", "approve", "release", "eval add"]
    verify = run("audit", "verify", "--json")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["ok"] is True


def test_policy_not_met_exits_3_with_the_failing_rules(backend, llama, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("name: strict\nevals:\n  - {metric: accuracy, min: 0.9}\n")
    assert run("policy", "set", str(policy)).exit_code == 0
    run("push", str(llama.adapter), "--name", "s", "--eval", "accuracy=0.5")
    run("review", "s:1")
    refused = run("approve", "s:1")
    assert refused.exit_code == 3
    assert "refused by policy 'strict'" in refused.stderr and "✗ evals:accuracy: accuracy = 0.5" in refused.stderr
    check = run("policy", "check", "s:1", "--json")
    assert check.exit_code == 3 and json.loads(check.stdout)["passed"] is False
    human = run("policy", "check", "s:1")
    assert human.exit_code == 3 and "✗ FAIL  evals:accuracy" in human.stdout
    shown = json.loads(run("policy", "show", "--json").stdout)
    assert shown["name"] == "strict" and shown["builtin"] is False and "min: 0.9" in shown["content"]


def test_illegal_transition_and_permission_exit_1(backend, llama) -> None:
    run("push", str(llama.adapter), "--name", "s")
    result = run("approve", "s:1")
    assert result.exit_code == 1 and "s:1 is draft" in result.stderr and "adapters review s:1" in result.stderr
    denied = run("push", str(llama.adapter), "--name", "s", user="mallory")
    assert denied.exit_code == 1 and "mallory is not a user of this registry" in denied.stderr


def test_users_keys_and_signed_approval(backend, llama, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generated = json.loads(run("keys", "generate", "--out", str(keys), "--name", "bob", "--json").stdout)
    assert Path(generated["private_key"]).stat().st_mode & 0o777 == 0o600
    assert run("keys", "generate", "--out", str(keys), "--name", "bob").exit_code == 1  # never overwritten
    added = run("users", "add", "bob", "--role", "reviewer", "--public-key", generated["public_key"], "--json")
    assert json.loads(added.stdout)["key_fingerprint"] == generated["fingerprint"]
    listed = {u["name"]: u for u in json.loads(run("users", "ls", "--json").stdout)}
    assert listed["tester"]["roles"] == ["admin"] and listed["bob"]["roles"] == ["reviewer"]
    assert run("users", "add", "eve", "--role", "king").exit_code == 1
    run("push", str(llama.adapter), "--name", "s")
    run("review", "s:1")
    signed = json.loads(run("approve", "s:1", "--key", generated["private_key"], "--json", user="bob").stdout)
    assert signed["signed_with"] == generated["fingerprint"]
    assert json.loads(run("show", "s:1", "--json").stdout)["approvals"][0]["signature_valid"] is True


def test_audit_verify_exits_3_on_a_broken_chain(backend, llama, tmp_path: Path) -> None:
    from registry import Registry

    run("push", str(llama.adapter), "--name", "s")
    run("review", "s:1")
    cp = tmp_path / "cp.json"
    assert run("audit", "checkpoint", "--out", str(cp)).exit_code == 0
    assert run("audit", "verify", "--checkpoint", str(cp)).exit_code == 0
    with Registry() as reg, tampering(reg) as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    broken = run("audit", "verify", "--checkpoint", str(cp))
    assert broken.exit_code == 3
    assert "AUDIT CHAIN BROKEN" in broken.stdout and "event 2 (push s:1 by mallory" in broken.stdout


def test_revoked_pull_needs_allow_revoked(backend, llama, tmp_path: Path) -> None:
    run("push", str(llama.adapter), "--name", "s")
    assert run("revoke", "s:1", "--reason", "secret in README").exit_code == 0
    refused = run("pull", "s:1", "-o", str(tmp_path / "o"))
    assert refused.exit_code == 1 and "secret in README" in refused.stderr and "--allow-revoked" in refused.stderr
    assert run("pull", "s:1", "-o", str(tmp_path / "o"), "--allow-revoked").exit_code == 0


def test_merge_and_release_with_merge(backend, llama, tmp_path: Path) -> None:
    run("push", str(llama.adapter), "--name", "s", "--base", str(llama.base), "--quantization", "nf4")
    merged = run("merge", "s:1", "-o", str(tmp_path / "m"), "--json")
    assert merged.exit_code == 0, merged.stderr
    data = json.loads(merged.stdout)
    assert data["tensors"]["merged"] == 14 and {f["path"] for f in data["files"]} >= {
        "model.safetensors",
        "config.json",
    }
    assert "warning: s:1 was trained on a 4-bit (nf4) base" in merged.stderr
    again = run("merge", "s:1", "-o", str(tmp_path / "m"))
    assert again.exit_code == 1 and "--force" in again.stderr
    assert (
        run("release", "s:1", "--channel", "prod", "--out", str(tmp_path / "x")).exit_code == 2
    )  # --out needs --merge
    run("review", "s:1")
    run("approve", "s:1")
    released = run("release", "s:1", "--channel", "prod", "--merge", "--out", str(tmp_path / "rel"), "--json")
    assert released.exit_code == 0, released.stderr
    details = json.loads(released.stdout)["details"]["merged"]
    assert details["base"]["fingerprint"].startswith("sha256:") and (tmp_path / "rel" / "model.safetensors").exists()
    history = json.loads(run("channels", "s", "--json").stdout)[0]["history"]
    assert history[-1]["details"]["merged"]["files"] == details["files"]
