"""`adapters verify --quant`: every load setting from the command line, embedded and through a real
`adapters serve` (where the client runs the load and the server checks and records the report)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import tinymodels
from cli.main import cli


def test_verify_quant_none_and_a_tuner_peft_cannot_run_on_4bit(cli_run, llama, tmp_path: Path) -> None:
    from peft import LoHaConfig

    assert cli_run("push", str(llama.adapter), "--name", "a", "--base", str(llama.base)).exit_code == 0
    load = ("--base", str(llama.base), "--mode", "load", "--device", "cpu")
    first = cli_run("verify", "a", *load, "--quant", "none", "--json")
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["passed"] is True and report["reference"] is None
    assert report["quantization"] == {
        "method": "none",
        "double_quant": None,
        "compute_dtype": "float32",
        "device_type": "cpu",
    }
    second = cli_run("verify", "a", *load, "--quant", "none")  # compared with the reference the first recorded
    assert second.exit_code == 0, second.stderr
    assert "✓ pass  probe-reference" in second.stdout and "full precision (float32)" in second.stdout
    assert "base loaded in full precision (float32) on cpu" in second.stdout

    loha = LoHaConfig(r=4, target_modules=["q_proj", "v_proj"], init_weights=False)
    adapter = tinymodels.make_adapter("llama", llama.base, tmp_path / "loha", peft_config=loha)
    assert cli_run("push", str(adapter), "--name", "loha", "--base", str(llama.base)).exit_code == 0
    shown = cli_run("verify", "loha", *load)  # the default, 4-bit NF4: peft has no LoHa layer for it
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    assert "quantized-load" in shown.stdout and "cannot run this LOHA adapter on 4-bit (nf4)" in shown.stdout
    assert "unexpected" not in shown.stdout + shown.stderr


def test_a_bad_quant_is_a_usage_error_naming_the_choices() -> None:
    result = CliRunner().invoke(cli, ["verify", "a", "--quant", "int4"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "Invalid value for '--quant'" in result.stderr
    assert "'nf4', 'fp4', 'int8', 'none'" in result.stderr
