"""The governance commands: exit codes (3 for a policy not met or a broken chain), JSON, help; each test
that takes ``cli_run`` runs embedded and through a real `adapters serve` on the same registry."""

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


def test_single_user_workflow_and_json_shapes(backend, cli_run, llama, tmp_path: Path) -> None:
    assert cli_run("push", str(llama.adapter), "--name", "s", "--base", str(llama.base)).exit_code == 0
    review = json.loads(cli_run("review", "s:1", "--json").stdout)
    assert (review["action"], review["previous_state"], review["state"]) == ("review", "draft", "in_review")
    approve = json.loads(cli_run("approve", "s:1", "--comment", "fine", "--json").stdout)
    assert approve["state"] == "approved" and approve["approvals"] == 1 and approve["policy"] == "default"
    release = json.loads(cli_run("release", "s:1", "--channel", "production", "--json").stdout)
    assert release["channel"] == "production" and release["policy_digest"].startswith("sha256:")
    channels = json.loads(cli_run("channels", "s", "--json").stdout)
    assert channels[0]["channel"] == "production" and channels[0]["ref"] == "s:1"
    assert [m["action"] for m in channels[0]["history"]] == ["release"]
    added = json.loads(
        cli_run(
            "eval", "add", "s:1", "--metric", "accuracy=0.7", "--metric", "f1=0.6", "--dataset", "holdout", "--json"
        ).stdout
    )
    assert [(e["metric"], e["dataset"]) for e in added["evals"]] == [("accuracy", "holdout"), ("f1", "holdout")]
    shown = json.loads(cli_run("show", "s@production", "--json").stdout)
    assert shown["state"] == "released" and shown["channels"] == ["production"]
    assert [a["actor"] for a in shown["approvals"]] == ["tester"]
    assert [h["action"] for h in shown["history"]] == ["review", "approve", "release"]
    log = json.loads(cli_run("audit", "log", "s", "--json").stdout)
    assert [e["action"] for e in log] == ["push", "review", "approve", "release", "eval add"]
    verify = cli_run("audit", "verify", "--json")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["ok"] is True


def test_policy_not_met_exits_3_with_the_failing_rules(backend, cli_run, llama, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("name: strict\nevals:\n  - {metric: accuracy, min: 0.9}\n")
    assert cli_run("policy", "set", str(policy)).exit_code == 0
    cli_run("push", str(llama.adapter), "--name", "s", "--eval", "accuracy=0.5")
    cli_run("review", "s:1")
    refused = cli_run("approve", "s:1")
    assert refused.exit_code == 3
    assert "refused by policy 'strict'" in refused.stderr and "✗ evals:accuracy: accuracy = 0.5" in refused.stderr
    check = cli_run("policy", "check", "s:1", "--json")
    assert check.exit_code == 3 and json.loads(check.stdout)["passed"] is False
    human = cli_run("policy", "check", "s:1")
    assert human.exit_code == 3 and "✗ FAIL  evals:accuracy" in human.stdout
    shown = json.loads(cli_run("policy", "show", "--json").stdout)
    assert shown["name"] == "strict" and shown["builtin"] is False and "min: 0.9" in shown["content"]


def test_illegal_transition_and_permission_exit_1(backend, cli_run, llama) -> None:
    cli_run("push", str(llama.adapter), "--name", "s")
    result = cli_run("approve", "s:1")
    assert result.exit_code == 1 and "s:1 is draft" in result.stderr and "adapters review s:1" in result.stderr
    denied = cli_run("push", str(llama.adapter), "--name", "s", user="mallory")
    # embedded, mallory is named and refused; through a server she has no token it issued
    expected = "adapters login" if cli_run.remote else "mallory is not a user of this registry"
    assert denied.exit_code == 1 and expected in denied.stderr


def test_users_keys_and_signed_approval(backend, cli_run, llama, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generated = json.loads(cli_run("keys", "generate", "--out", str(keys), "--name", "bob", "--json").stdout)
    assert Path(generated["private_key"]).stat().st_mode & 0o777 == 0o600
    assert cli_run("keys", "generate", "--out", str(keys), "--name", "bob").exit_code == 1  # never overwritten
    added = cli_run("users", "add", "bob", "--role", "reviewer", "--public-key", generated["public_key"], "--json")
    assert json.loads(added.stdout)["key_fingerprint"] == generated["fingerprint"]
    listed = {u["name"]: u for u in json.loads(cli_run("users", "ls", "--json").stdout)}
    assert listed["tester"]["roles"] == ["admin"] and listed["bob"]["roles"] == ["reviewer"]
    assert cli_run("users", "add", "eve", "--role", "king").exit_code == 1
    cli_run("push", str(llama.adapter), "--name", "s")
    cli_run("review", "s:1")
    signed = json.loads(cli_run("approve", "s:1", "--key", generated["private_key"], "--json", user="bob").stdout)
    assert signed["signed_with"] == generated["fingerprint"]
    assert json.loads(cli_run("show", "s:1", "--json").stdout)["approvals"][0]["signature_valid"] is True


def test_audit_verify_exits_3_on_a_broken_chain(backend, cli_run, llama, tmp_path: Path) -> None:
    from registry import Registry

    cli_run("push", str(llama.adapter), "--name", "s")
    cli_run("review", "s:1")
    cp = tmp_path / "cp.json"
    assert cli_run("audit", "checkpoint", "--out", str(cp)).exit_code == 0
    assert cli_run("audit", "verify", "--checkpoint", str(cp)).exit_code == 0
    with Registry() as reg, tampering(reg) as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE action = 'push'"))
    broken = cli_run("audit", "verify", "--checkpoint", str(cp))
    assert broken.exit_code == 3
    assert "AUDIT CHAIN BROKEN" in broken.stdout and "(push s:1 by mallory" in broken.stdout


def test_revoked_pull_needs_allow_revoked(backend, cli_run, llama, tmp_path: Path) -> None:
    cli_run("push", str(llama.adapter), "--name", "s")
    assert cli_run("revoke", "s:1", "--reason", "secret in README").exit_code == 0
    refused = cli_run("pull", "s:1", "-o", str(tmp_path / "o"))
    assert refused.exit_code == 1 and "secret in README" in refused.stderr and "--allow-revoked" in refused.stderr
    assert cli_run("pull", "s:1", "-o", str(tmp_path / "o"), "--allow-revoked").exit_code == 0


def test_merge_and_release_with_merge(backend, cli_run, llama, tmp_path: Path) -> None:
    """Embedded and through a real `adapters serve`: the merge runs here; the release records its files."""
    cli_run("push", str(llama.adapter), "--name", "s", "--base", str(llama.base), "--quantization", "nf4")
    merged = cli_run("merge", "s:1", "-o", str(tmp_path / "m"), "--json")
    assert merged.exit_code == 0, merged.stderr
    data = json.loads(merged.stdout)
    assert data["tensors"]["merged"] == 14 and {f["path"] for f in data["files"]} >= {
        "model.safetensors",
        "config.json",
    }
    assert "warning: s:1 was trained on a 4-bit (nf4) base" in merged.stderr
    again = cli_run("merge", "s:1", "-o", str(tmp_path / "m"))
    assert again.exit_code == 1 and "--force" in again.stderr
    assert (
        cli_run("release", "s:1", "--channel", "prod", "--out", str(tmp_path / "x")).exit_code == 2
    )  # --out needs --merge
    cli_run("review", "s:1")
    cli_run("approve", "s:1")
    released = cli_run("release", "s:1", "--channel", "prod", "--merge", "--out", str(tmp_path / "rel"), "--json")
    assert released.exit_code == 0, released.stderr
    details = json.loads(released.stdout)["details"]["merged"]
    assert details["base"]["fingerprint"].startswith("sha256:") and (tmp_path / "rel" / "model.safetensors").exists()
    history = json.loads(cli_run("channels", "s", "--json").stdout)[0]["history"]
    assert history[-1]["details"]["merged"]["files"] == details["files"]
