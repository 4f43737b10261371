"""`verify --target` through the registry (every mode, the profiles recorded with the report), the server's
check of a submitted report's serving checks, and the policy's ``serving`` rule holding back a release,
judged from the version's stored config and headers, on SQLite, PostgreSQL and S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tinymodels
from registry import InvalidInput, PolicyError, Registry
from registry.domain.verification import VerificationReport
from registry.errors import PolicyNotMet

VLLM_64 = "name: serving\napprovals: {count: 1}\nserving:\n  targets:\n    - {engine: vllm, max_lora_rank: 64}\n"


@pytest.fixture(scope="module")
def adapters(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tiny_models["llama"].base
    root = tmp_path_factory.mktemp("served")
    qv = ["q_proj", "v_proj"]
    return {
        "ok": tinymodels.make_adapter("llama", base, root / "ok", r=8, target_modules=qv),
        "r128": tinymodels.make_adapter("llama", base, root / "r128", r=128, lora_alpha=128, target_modules=qv),
        "dora": tinymodels.make_adapter("llama", base, root / "dora", target_modules=qv, use_dora=True),
    }


def _by_name(report: VerificationReport) -> dict[str, bool | None]:
    return {c.name: c.passed for c in report.checks}


def test_static_verify_checks_the_targets_and_records_their_profiles(reg: Registry, llama, adapters) -> None:
    ref = reg.push(adapters["r128"], name="wide", base=str(llama.base)).ref
    report = reg.verify(ref, mode="static", targets=["vllm", "sglang", "lorax"], max_lora_rank=64)
    checks = _by_name(report)
    assert checks["vllm-rank"] is False and checks["sglang-rank"] is False and not report.passed
    assert checks["lorax-target-modules"] is True  # llama's model_type read from the base's config.json
    assert checks["tensor-shapes"] is True  # the static checks ran as well
    assert [(p["engine"], p["max_lora_rank"], p["model_type"], p["vocab_size"]) for p in report.serving] == [
        ("vllm", 64, "llama", 256),
        ("sglang", 64, "llama", 256),
        ("lorax", None, "llama", 256),
    ]
    assert all(p["rules_from"] for p in report.serving)
    # stored and read back whole; the serving checks are among the failures `show` lists
    stored = reg.show(ref).verifications[-1]
    assert stored.serving == report.serving and stored.to_dict() == report.to_dict()
    assert {c.name for c in stored.failures} == {"vllm-rank", "sglang-rank"}
    assert VerificationReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_the_target_checks_run_in_every_mode(sqlite_reg: Registry, llama, adapters) -> None:
    ref = sqlite_reg.push(adapters["dora"], name="dora", base=str(llama.base)).ref
    for mode in ("static", "all"):
        report = sqlite_reg.verify(ref, mode=mode, device="cpu", targets=["vllm", "tgi"])
        checks = _by_name(report)
        assert checks["vllm-dora"] is False and checks["tgi-dora"] is False, mode
        assert [p["engine"] for p in report.serving] == ["vllm", "tgi"]
    load = sqlite_reg.verify(ref, mode="load", device="cpu", targets=["sglang"])
    assert _by_name(load)["sglang-dora"] is False and "adapter-keys" in _by_name(load)


def test_a_report_without_targets_is_written_as_before(sqlite_reg: Registry, llama) -> None:
    """Reports recorded before serving targets existed read back unchanged, and keep their digest."""
    ref = sqlite_reg.push(llama.adapter, name="plain", base=str(llama.base)).ref
    report = sqlite_reg.verify(ref, mode="static")
    body = report.to_dict()
    assert "serving" not in body and report.serving == ()
    old = VerificationReport.from_dict(body)
    assert old.serving == () and old.report_digest == report.report_digest


def test_bad_target_options_are_refused_before_anything_runs(sqlite_reg: Registry, llama) -> None:
    ref = sqlite_reg.push(llama.adapter, name="p", base=str(llama.base)).ref
    with pytest.raises(InvalidInput, match="only from 1, 8, 16"):
        sqlite_reg.verify(ref, mode="static", targets=["vllm"], max_lora_rank=24)
    with pytest.raises(InvalidInput, match="--lora-target-modules applies to --target vllm or sglang"):
        sqlite_reg.verify(ref, mode="static", targets=["tgi"], lora_target_modules=["q_proj"])
    assert not sqlite_reg.show(ref).verifications


def test_a_submitted_report_with_a_forged_serving_check_is_refused(sqlite_reg: Registry, llama, adapters) -> None:
    """The server's path (record_verification): it derives the serving checks itself from the stored blobs."""
    from registry.domain.clock import now_iso

    ref = sqlite_reg.push(adapters["r128"], name="forged", base=str(llama.base)).ref
    genuine = sqlite_reg.verify(ref, mode="static", targets=["vllm"]).to_dict()
    fresh = {**genuine, "created_at": now_iso()}
    passed = [{**c, "passed": True} if c["name"] == "vllm-rank" else c for c in fresh["checks"]]
    with pytest.raises(InvalidInput, match=r"serving checks .* are not the ones the registry derives"):
        sqlite_reg.record_verification(ref, {**fresh, "checks": passed})
    with pytest.raises(InvalidInput, match="no serving profile"):
        sqlite_reg.record_verification(ref, {**{k: v for k, v in fresh.items() if k != "serving"}})
    wider = [{**p, "max_lora_rank": 128} for p in fresh["serving"]]  # a claim the checks do not match
    with pytest.raises(InvalidInput, match="not the ones the registry derives"):
        sqlite_reg.record_verification(ref, {**fresh, "serving": wider})
    recorded = sqlite_reg.record_verification(ref, fresh)  # the genuine one is recorded
    assert recorded.serving == tuple(fresh["serving"])
    assert len(sqlite_reg.show(ref).verifications) == 2


def test_a_release_must_pass_the_serving_rule(reg: Registry, llama, adapters, tmp_path: Path) -> None:
    policy = tmp_path / "serving.yaml"
    policy.write_text(VLLM_64)
    reg.set_policy(policy, channel="production")
    wide = reg.push(adapters["r128"], name="svc", base=str(llama.base)).ref
    reg.review(wide)
    reg.approve(wide)  # the registry's policy (default) has no serving rule
    with pytest.raises(PolicyNotMet) as refused:
        reg.release(wide, channel="production")
    failed = [r for r in refused.value.results if not r.passed]
    assert [r.rule for r in failed] == ["serving:vllm"]
    assert "vllm-rank" in failed[0].message and "start vLLM with --max-lora-rank 128" in failed[0].message
    check = reg.check_policy(wide, channel="production")
    assert [(r.rule, r.passed) for r in check.results if r.rule.startswith("serving")] == [("serving:vllm", False)]
    events = [e for e in reg.audit_log(wide) if e.action == "release refused"]
    assert events and events[-1].data["rules"][0]["rule"] == "serving:vllm"
    ok = reg.push(adapters["ok"], name="svc", base=str(llama.base)).ref
    reg.review(ok)
    reg.approve(ok)
    released = reg.release(ok, channel="production")
    assert released.state == "released"
    assert any(r.rule == "serving:vllm" and r.passed for r in released.results)


def test_the_serving_rule_reads_the_stored_adapter_not_a_report(reg: Registry, llama, adapters, tmp_path) -> None:
    """A passing verification report that claimed a larger --max-lora-rank changes nothing: the rule is
    evaluated from the version's own config and headers with the policy's limits."""
    policy = tmp_path / "serving.yaml"
    policy.write_text(VLLM_64)
    reg.set_policy(policy)
    ref = reg.push(adapters["r128"], name="claims", base=str(llama.base)).ref
    assert reg.verify(ref, mode="static", targets=["vllm"], max_lora_rank=128).passed
    reg.review(ref)
    with pytest.raises(PolicyNotMet, match="serving:vllm"):
        reg.approve(ref)  # the registry's own policy: checked at approval as well as at release


def test_policy_serving_errors_name_the_field(sqlite_reg: Registry, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("serving:\n  targets:\n    - {engine: vllm, max_lora_rank: 24}\n")
    with pytest.raises(PolicyError, match=r"serving\.targets\[0\]\.max_lora_rank: vLLM accepts --max-lora-rank only"):
        sqlite_reg.set_policy(bad)
    assert sqlite_reg.policy().builtin
