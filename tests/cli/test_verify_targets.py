"""`adapters verify --target`: exit codes, the human and `--json` output, option errors, `show` and
`policy check` listing the serving rules; embedded and through a real `adapters serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imports import heavy_imports

import tinymodels


@pytest.fixture(scope="module")
def wide(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA of rank 64 with a DoRA magnitude: above vLLM's default --max-lora-rank, and DoRA."""
    base = tiny_models["llama"].base
    out = tmp_path_factory.mktemp("wide") / "lora"
    return tinymodels.make_adapter("llama", base, out, r=64, lora_alpha=64, target_modules=["q_proj"], use_dora=True)


def test_verify_target_exit_codes_and_json(cli_run, llama, wide: Path) -> None:
    base = ("--base", str(llama.base), "--mode", "static")
    cli_run("push", str(llama.adapter), "--name", "ok", "--base", str(llama.base))
    cli_run("push", str(wide), "--name", "wide", "--base", str(llama.base))
    ok = cli_run("verify", "ok", *base, "--target", "vllm", "--target", "sglang,lorax,tgi", "--json")
    assert ok.exit_code == 0, ok.stderr + ok.stdout
    report = json.loads(ok.stdout)
    assert report["passed"] is True
    assert [p["engine"] for p in report["serving"]] == ["vllm", "sglang", "lorax", "tgi"]
    assert report["serving"][0]["max_lora_rank"] == 16  # vLLM's default, recorded as applied
    names = [c["name"] for c in report["checks"]]
    assert {"vllm-rank", "vllm-dora", "vllm-init", "sglang-target-modules", "lorax-target-modules"} <= set(names)

    failed = cli_run("verify", "wide", *base, "--target", "vllm")
    assert failed.exit_code == 3
    assert "serving targets: vllm (max rank 16)" in failed.stdout
    assert "✗ FAIL  vllm-rank" in failed.stdout and "✗ FAIL  vllm-dora" in failed.stdout
    assert "start vLLM with --max-lora-rank 64" in " ".join(failed.stdout.split())
    raised = cli_run("verify", "wide", *base, "--target", "vllm", "--max-lora-rank", "64", "--json")
    assert raised.exit_code == 3  # DoRA still fails; the rank now fits
    checks = {c["name"]: c["passed"] for c in json.loads(raised.stdout)["checks"]}
    assert checks["vllm-rank"] is True and checks["vllm-dora"] is False

    shown = cli_run("show", "wide", "--json")
    assert [v["serving"][0]["max_lora_rank"] for v in json.loads(shown.stdout)["verifications"]] == [16, 64]
    table = cli_run("show", "wide")
    assert "vllm (max rank 16)" in " ".join(table.stdout.split())


def test_verify_target_option_errors(cli_run, llama) -> None:
    cli_run("push", str(llama.adapter), "--name", "a", "--base", str(llama.base))
    base = ("--base", str(llama.base), "--mode", "static")
    unknown = cli_run("verify", "a", *base, "--target", "triton")
    assert unknown.exit_code == 2 and "triton; use vllm, sglang, lorax, tgi" in unknown.stderr
    bad_rank = cli_run("verify", "a", *base, "--target", "vllm", "--max-lora-rank", "24")
    assert bad_rank.exit_code == 1 and "only from 1, 8, 16, 32, 64, 128, 256, 320, 512" in bad_rank.stderr
    no_engine = cli_run("verify", "a", *base, "--target", "lorax", "--max-lora-rank", "64")
    assert no_engine.exit_code == 1 and "--max-lora-rank applies to --target vllm or sglang" in no_engine.stderr
    narrow = cli_run("verify", "a", *base, "--target", "sglang", "--lora-target-modules", "q_proj,v_proj", "--json")
    assert narrow.exit_code == 3  # the fixture's adapter is all-linear
    assert json.loads(narrow.stdout)["serving"][0]["lora_target_modules"] == ["q_proj", "v_proj"]


def test_policy_check_lists_the_serving_rule(cli_run, llama, wide: Path, tmp_path: Path) -> None:
    policy = tmp_path / "serving.yaml"
    policy.write_text("name: serving\nserving:\n  targets:\n    - {engine: vllm, max_lora_rank: 64}\n")
    assert cli_run("policy", "set", str(policy), "--channel", "production").exit_code == 0
    cli_run("push", str(wide), "--name", "w", "--base", str(llama.base))
    check = cli_run("policy", "check", "w:1", "--channel", "production")
    assert check.exit_code == 3
    text = " ".join(check.stdout.split())
    assert "✗ FAIL serving:vllm: vLLM (--max-lora-rank 64), vllm-dora:" in text
    assert "vllm-rank" not in text  # rank 64 fits the policy's limit
    as_json = json.loads(cli_run("policy", "check", "w:1", "--channel", "production", "--json").stdout)
    assert [(r["rule"], r["passed"]) for r in as_json["results"]][-2:] == [("serving:vllm", False)] * 2
    cli_run("review", "w:1")
    cli_run("approve", "w:1")
    refused = cli_run("release", "w:1", "--channel", "production")
    assert refused.exit_code == 3 and "serving:vllm" in refused.stderr


def test_static_verify_with_targets_does_not_import_torch(sqlite_reg, llama) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    args = ["verify", "a", "--mode", "static", "--target", "vllm,sglang,lorax,tgi", "--json"]
    stdout, heavy = heavy_imports(args)
    assert '"vllm-rank"' in stdout
    assert heavy == []
