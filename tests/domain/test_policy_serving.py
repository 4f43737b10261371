"""The policy's ``serving`` rule kind: parsed into serving targets, every bad value refused naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.domain.policy import Policy
from registry.domain.serving import ServingTarget
from registry.errors import PolicyError


def _serving(targets: str) -> str:
    return f"serving:\n  targets:\n{targets}"


def test_serving_targets_are_parsed() -> None:
    policy = Policy.parse(
        _serving(
            "    - {engine: vllm, max_lora_rank: 64}\n"
            "    - {engine: sglang, max_lora_rank: 32, lora_target_modules: [q_proj, v_proj]}\n"
            "    - {engine: lorax, model_type: llama}\n"
            "    - engine: tgi\n"
        )
    )
    assert policy.serving_targets == (
        ServingTarget("vllm", 64),
        ServingTarget("sglang", 32, ("q_proj", "v_proj")),
        ServingTarget("lorax", model_type="llama"),
        ServingTarget("tgi"),
    )
    assert Policy.parse("name: x\n").serving_targets == ()


def test_the_shipped_serving_policy_holds_vllm_and_lorax_targets() -> None:
    shipped = Path(__file__).resolve().parents[2] / "policies" / "serving.yaml"
    policy = Policy.parse(shipped.read_text(), "serving.yaml")
    assert policy.name == "serving"
    assert policy.serving_targets == (ServingTarget("vllm", 64), ServingTarget("lorax", model_type="llama"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_serving("    - {engine: triton}\n"), r"serving\.targets\[0\]\.engine: unknown serving engine 'triton'; use "
                                                "one of vllm, sglang, lorax, tgi"),
        (_serving("    - {engine: vllm, max_lora_rank: 24}\n"), r"serving\.targets\[0\]\.max_lora_rank: vLLM accepts "
                                                                 "--max-lora-rank only from 1, 8, 16"),
        (_serving("    - {engine: vllm}\n    - {engine: lorax, max_lora_rank: 64}\n"),
         r"serving\.targets\[1\]\.max_lora_rank: LoRAX has no --max-lora-rank setting"),
        (_serving("    - {engine: sglang, max_lora_rank: -1}\n"), r"targets\[0\]\.max_lora_rank: .*positive integer"),
        (_serving("    - {engine: sglang, max_lora_rank: true}\n"), r"targets\[0\]\.max_lora_rank: .*positive integer"),
        (_serving("    - {engine: sglang, lora_target_modules: q_proj}\n"),
         r"serving\.targets\[0\]\.lora_target_modules: lora_target_modules must be a list"),
        (_serving("    - {engine: sglang, lora_target_modules: [c_attn]}\n"),
         r"serving\.targets\[0\]\.lora_target_modules: SGLang's --lora-target-modules accepts only"),
        (_serving("    - {engine: vllm, model_type: llama}\n"), r"serving\.targets\[0\]\.model_type: .*applies to lorax"),
        (_serving("    - {engine: vllm, rank: 64}\n"), r"serving\.targets\[0\]: unknown key 'rank'; allowed here: "
                                                        "engine, max_lora_rank, lora_target_modules, model_type"),
        (_serving("    - {max_lora_rank: 64}\n"), r"serving\.targets\[0\] needs an engine"),
        (_serving("    - vllm\n"), r"serving\.targets\[0\] must be a mapping with an engine"),
        ("serving:\n  targets: []\n", r"serving\.targets must be a non-empty list"),
        ("serving:\n  targets: {engine: vllm}\n", r"serving\.targets must be a non-empty list"),
        ("serving:\n  engines: [vllm]\n", r"serving: unknown key 'engines'; allowed here: targets"),
        ("serving: [vllm]\n", r"'serving' must be a mapping with keys targets"),
    ],
)  # fmt: skip
def test_a_bad_serving_rule_is_refused_naming_the_field(content: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.parse(content, source="p.yaml")
