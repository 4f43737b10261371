"""Serving-engine rules (vLLM, SGLang, LoRAX, TGI) on real peft adapters built to break each rule, read as
the registry reads them (the config and the safetensors header), and one adapter that passes them all."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tinymodels
from registry import InvalidInput
from registry.domain.adapterdir import read_adapter_dir
from registry.domain.serving import BaseFacts, ServingTarget, serving_checks, serving_targets

LLAMA = BaseFacts("llama", 256)  # tinymodels' llama: model_type llama, vocab_size 256
QV = ["q_proj", "v_proj"]


@pytest.fixture(scope="module")
def build(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``build(name, kind="llama", config=None, **lora)``: a real peft adapter (cached per name), its
    adapter_config.json then updated with ``config`` (for options whose effect on serving is in the config)."""
    root = tmp_path_factory.mktemp("serving")
    made: dict[str, Path] = {}

    def make(name: str, kind: str = "llama", config: dict[str, Any] | None = None, **lora: Any) -> Path:
        if name not in made:
            lora.setdefault("target_modules", QV if kind == "llama" else None)
            if lora["target_modules"] is None:
                del lora["target_modules"]
            out = tinymodels.make_adapter(kind, tiny_models[kind].base, root / name, **lora)
            if config:
                path = out / "adapter_config.json"
                path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
            made[name] = out
        return made[name]

    return make


def _checks(directory: Path, target: ServingTarget, base: BaseFacts | None = LLAMA) -> dict[str, Any]:
    adapter = read_adapter_dir(directory)
    checks = serving_checks(target, adapter.config, adapter.tensors, base)
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), names
    return {c.name: c for c in checks}


def _failed(checks: dict[str, Any]) -> set[str]:
    return {n for n, c in checks.items() if c.passed is False}


# -- the adapter that passes everywhere ----------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        ServingTarget("vllm"),
        ServingTarget("vllm", max_lora_rank=8, lora_target_modules=("qkv_proj",)),
        ServingTarget("sglang"),
        ServingTarget("sglang", max_lora_rank=8, lora_target_modules=("q_proj", "v_proj")),
        ServingTarget("sglang", lora_target_modules=("all",)),
        ServingTarget("lorax"),
        ServingTarget("tgi"),
    ],
    ids=lambda t: t.describe(),
)
def test_a_plain_lora_passes_every_engine(build, target: ServingTarget) -> None:
    checks = _checks(build("plain", r=8), target)
    assert not _failed(checks), {n: c.message for n, c in checks.items() if c.passed is False}
    assert all(c.passed is True for c in checks.values()), checks


# -- vLLM ----------------------------------------------------------------------------------------------


def test_vllm_pads_a_small_rank_and_refuses_one_above_max_lora_rank(build) -> None:
    small = _checks(build("r4", r=4), ServingTarget("vllm"))["vllm-rank"]
    assert small.passed is True and "rank 4" in small.message and "--max-lora-rank 16" in small.message
    big = build("r64", r=64, lora_alpha=64)
    rank = _checks(big, ServingTarget("vllm"))["vllm-rank"]
    assert rank.passed is False
    assert "rank 64" in rank.message and "above --max-lora-rank 16" in rank.message
    assert "start vLLM with --max-lora-rank 64" in rank.message
    assert _checks(big, ServingTarget("vllm", max_lora_rank=64))["vllm-rank"].passed is True


def test_vllm_rank_counts_rank_pattern_and_names_the_next_allowed_limit(build) -> None:
    adapter = build("pattern", r=8, rank_pattern={"v_proj": 24})
    rank = _checks(adapter, ServingTarget("vllm"))["vllm-rank"]
    assert rank.passed is False and "rank 24" in rank.message
    assert "--max-lora-rank 32" in rank.message  # vLLM accepts only 1, 8, 16, 32, ...: the next one up
    over = build("r600", r=8, config={"r": 600})
    assert "no --max-lora-rank vLLM accepts" in _checks(over, ServingTarget("vllm"))["vllm-rank"].message


def test_vllm_accepts_only_its_max_lora_rank_values() -> None:
    with pytest.raises(InvalidInput, match=r"only from 1, 8, 16, 32, 64, 128, 256, 320, 512.*not 24"):
        ServingTarget("vllm", max_lora_rank=24)
    assert ServingTarget("vllm", max_lora_rank=320).rank_limit == 320


def test_vllm_refuses_dora(build) -> None:
    checks = _checks(build("dora", use_dora=True), ServingTarget("vllm"))
    assert _failed(checks) == {"vllm-dora", "vllm-tensors"}
    assert "does not yet support DoRA" in checks["vllm-dora"].message
    assert "lora_magnitude_vector" in checks["vllm-tensors"].message


def test_vllm_refuses_lora_bias(build) -> None:
    checks = _checks(build("lora-bias", lora_bias=True), ServingTarget("vllm"))
    assert _failed(checks) == {"vllm-lora-bias", "vllm-tensors"}
    assert "lora_bias" in checks["vllm-lora-bias"].message and "lora_bias=False" in checks["vllm-lora-bias"].message
    assert "lora_B.bias" in checks["vllm-tensors"].message


def test_vllm_refuses_trained_biases(build) -> None:
    checks = _checks(build("bias-all", kind="gpt2", bias="all", fan_in_fan_out=True), ServingTarget("vllm"))
    assert {"vllm-bias", "vllm-tensors"} <= _failed(checks)
    assert "bias is 'all'" in checks["vllm-bias"].message and 'bias="none"' in checks["vllm-bias"].message


def test_vllm_accepts_only_a_classification_head_in_modules_to_save(build) -> None:
    lm_head = _checks(build("mts-lm-head", modules_to_save=["lm_head"]), ServingTarget("vllm"))
    assert _failed(lm_head) == {"vllm-modules-to-save", "vllm-tensors"}
    assert "modules_to_save is ['lm_head']" in lm_head["vllm-modules-to-save"].message
    score = _checks(build("mts-score", config={"modules_to_save": ["score"]}), ServingTarget("vllm"))
    assert score["vllm-modules-to-save"].passed is True


def test_vllm_refuses_trainable_tokens(build) -> None:
    checks = _checks(build("tokens", trainable_token_indices=[1, 2, 3]), ServingTarget("vllm"))
    assert _failed(checks) == {"vllm-added-tokens", "vllm-tensors"}
    assert "trainable_token_indices [1, 2, 3]" in checks["vllm-added-tokens"].message
    assert "trainable_tokens_delta" in checks["vllm-tensors"].message


@pytest.fixture(scope="module")
def resized(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA trained after ``resize_token_embeddings(260)``: peft saves the whole embedding and lm_head."""
    from peft import LoraConfig, get_peft_model

    model = tinymodels.load_base("llama", tiny_models["llama"].base)
    model.resize_token_embeddings(260)
    out = tmp_path_factory.mktemp("resized") / "lora"
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)).save_pretrained(out)
    return out


def test_vllm_refuses_a_resized_vocabulary(resized: Path) -> None:
    checks = _checks(resized, ServingTarget("vllm"))
    added = checks["vllm-added-tokens"]
    assert added.passed is False and "260 token rows where the base's vocabulary has 256" in added.message
    assert checks["vllm-tensors"].passed is False  # embed_tokens.weight: "is unsupported LoRA weight"
    # without the base's config the whole saved embedding still tells
    blind = _checks(resized, ServingTarget("vllm"), base=None)["vllm-added-tokens"]
    assert blind.passed is False and "saved whole [260, 64]" in blind.message


def test_vllm_embedding_lora_keeps_the_base_vocabulary(build) -> None:
    checks = _checks(build("embedding-lora", target_modules=["embed_tokens", "q_proj"]), ServingTarget("vllm"))
    assert not _failed(checks)  # lora_embedding_A/B read; the embed_tokens.base_layer copy is skipped by vLLM


@pytest.mark.parametrize(
    ("init", "passed"),
    [("pissa", False), ("pissa_niter_4", False), ("olora", False), ("corda", False), ("loftq", False),
     ("gaussian", True), ("eva", True), (True, True)],
)  # fmt: skip
def test_vllm_refuses_base_changing_initialisations(build, init: Any, passed: bool) -> None:
    adapter = build(f"init-{init}", config={"init_lora_weights": init})
    check = _checks(adapter, ServingTarget("vllm"))["vllm-init"]
    assert check.passed is passed
    if not passed:
        assert f"init_lora_weights is {init!r}" in check.message
        assert "path_initial_model_for_weight_conversion" in check.message


def test_vllm_refuses_layer_replication(build) -> None:
    adapter = build("replicated", config={"layer_replication": [[0, 2], [1, 2]]})
    check = _checks(adapter, ServingTarget("vllm"))["vllm-layer-replication"]
    assert check.passed is False and "does not support layer_replication" in check.message


def test_vllm_refuses_lora_variants(build) -> None:
    adapter = build("alora", config={"alora_invocation_tokens": [5, 6]})
    check = _checks(adapter, ServingTarget("vllm"))["vllm-variants"]
    assert check.passed is False and "Activated LoRA" in check.message


def test_vllm_lora_target_modules_match_packed_modules(build) -> None:
    adapter = build("qvo", target_modules=["q_proj", "v_proj", "o_proj"])
    packed = _checks(adapter, ServingTarget("vllm", lora_target_modules=("qkv_proj", "o_proj")))
    assert packed["vllm-target-modules"].passed is True
    narrow = _checks(adapter, ServingTarget("vllm", lora_target_modules=("qkv_proj",)))["vllm-target-modules"]
    assert narrow.passed is False
    assert "model.layers.N.self_attn.o_proj (2 layers)" in narrow.message and "never applied" in narrow.message


def test_every_engine_serves_lora_only(build) -> None:
    from peft import IA3Config

    ia3 = build("ia3", peft_config=IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]))
    for engine in ("vllm", "sglang", "lorax", "tgi"):
        check = _checks(ia3, ServingTarget(engine))[f"{engine}-peft-type"]
        assert check.passed is False and "LoRA adapters only and this is IA3" in check.message


# -- SGLang --------------------------------------------------------------------------------------------


def test_sglang_refuses_targets_outside_lora_target_modules(build) -> None:
    adapter = build("qvo", target_modules=["q_proj", "v_proj", "o_proj"])
    check = _checks(adapter, ServingTarget("sglang", lora_target_modules=("q_proj", "k_proj", "v_proj")))
    target = check["sglang-target-modules"]
    assert target.passed is False
    assert "o_proj are not in --lora-target-modules q_proj k_proj v_proj" in target.message
    assert "--lora-target-modules o_proj qkv_proj" in target.message  # the way out, normalized as SGLang does
    assert _checks(adapter, ServingTarget("sglang", lora_target_modules=("qkv_proj", "o_proj")))[
        "sglang-target-modules"
    ].passed


def test_sglang_refuses_dora_added_tokens_rank_and_patterns(build, resized: Path) -> None:
    assert _checks(build("dora", use_dora=True), ServingTarget("sglang"))["sglang-dora"].passed is False
    tokens = _checks(build("tokens", trainable_token_indices=[1, 2, 3]), ServingTarget("sglang"))
    assert tokens["sglang-added-tokens"].passed is False
    assert _checks(resized, ServingTarget("sglang"))["sglang-added-tokens"].passed is False
    rank = _checks(build("r64", r=64, lora_alpha=64), ServingTarget("sglang", max_lora_rank=32))["sglang-rank"]
    assert rank.passed is False and "start SGLang with --max-lora-rank 64" in rank.message
    pattern = _checks(build("pattern", r=8, rank_pattern={"v_proj": 24}), ServingTarget("sglang"))
    assert (
        pattern["sglang-rank-pattern"].passed is False
        and "reads only r and lora_alpha" in pattern["sglang-rank-pattern"].message
    )
    saved = _checks(build("mts-lm-head", modules_to_save=["lm_head"]), ServingTarget("sglang"))
    assert saved["sglang-modules-to-save"].passed is False


def test_sglang_refuses_a_regex_and_modules_it_has_no_lora_for(build) -> None:
    regex = build("regex", target_modules=r".*\.(q_proj|v_proj)")
    check = _checks(regex, ServingTarget("sglang"))["sglang-target-modules"]
    assert check.passed is False and "regular expression" in check.message
    gpt2 = _checks(build("gpt2", kind="gpt2", fan_in_fan_out=True), ServingTarget("sglang"), BaseFacts("gpt2", 128))
    assert gpt2["sglang-target-modules"].passed is False and "c_attn" in gpt2["sglang-target-modules"].message


def test_sglang_lora_target_modules_are_its_choices() -> None:
    with pytest.raises(InvalidInput, match=r"accepts only q_proj.*not c_attn"):
        ServingTarget("sglang", lora_target_modules=("c_attn",))


# -- LoRAX and TGI -------------------------------------------------------------------------------------


def test_lorax_names_the_target_modules_it_silently_ignores(build) -> None:
    embedding = build("embedding-lora", target_modules=["embed_tokens", "q_proj"])
    check = _checks(embedding, ServingTarget("lorax"))["lorax-target-modules"]
    assert check.passed is False and "silently ignores the LoRA weights of model.embed_tokens" in check.message
    # the list is per architecture: Mixtral's LoRAX model loads attention only
    all_linear = build("all-linear", target_modules="all-linear")
    mixtral = _checks(all_linear, ServingTarget("lorax", model_type="mixtral"))["lorax-target-modules"]
    assert mixtral.passed is False and "model.layers.N.mlp.down_proj (2 layers)" in mixtral.message
    assert "flash_mixtral.py" in mixtral.message
    assert _checks(all_linear, ServingTarget("lorax"))["lorax-target-modules"].passed is True  # llama: all of them


def test_lorax_needs_the_model_type_and_refuses_models_without_adapters(build) -> None:
    plain = build("plain", r=8)
    unknown = _checks(plain, ServingTarget("lorax"), base=None)["lorax-target-modules"]
    assert unknown.passed is None and "model_type is unknown" in unknown.message
    bert = _checks(plain, ServingTarget("lorax"), BaseFacts("bert", 128))["lorax-model"]
    assert bert.passed is False and "does not support adapter loading" in bert.message


def test_lorax_and_tgi_drop_what_is_not_lora_a_or_b(build) -> None:
    for engine in ("lorax", "tgi"):
        dora = _checks(build("dora", use_dora=True), ServingTarget(engine))
        assert dora[f"{engine}-dora"].passed is False and "without the magnitudes" in dora[f"{engine}-dora"].message
        assert dora[f"{engine}-extra-weights"].passed is False
        bias = _checks(build("lora-bias", lora_bias=True), ServingTarget(engine))[f"{engine}-extra-weights"]
        assert bias.passed is False and "lora_B.bias" in bias.message
        pattern = _checks(build("pattern", r=8, rank_pattern={"v_proj": 24}), ServingTarget(engine))
        assert (
            pattern[f"{engine}-rank-pattern"].passed is False
            and "wrong scale" in pattern[f"{engine}-rank-pattern"].message
        )


def test_tgi_ignores_modules_outside_its_layer_lookup(build) -> None:
    gpt2 = _checks(build("gpt2", kind="gpt2", fan_in_fan_out=True), ServingTarget("tgi"), BaseFacts("gpt2", 128))
    check = gpt2["tgi-target-modules"]
    assert check.passed is False and "transformer.h.N.attn.c_attn (2 layers)" in check.message


# -- targets and profiles ------------------------------------------------------------------------------


def test_options_apply_to_the_engines_that_have_them() -> None:
    both = serving_targets(["vllm", "lorax", "sglang"], max_lora_rank=64, lora_target_modules=["q_proj"])
    assert [(t.engine, t.max_lora_rank, t.lora_target_modules) for t in both] == [
        ("vllm", 64, ("q_proj",)),
        ("lorax", None, None),
        ("sglang", 64, ("q_proj",)),
    ]
    with pytest.raises(InvalidInput, match="--max-lora-rank applies to --target vllm or sglang; given lorax"):
        serving_targets(["lorax"], max_lora_rank=64)
    with pytest.raises(InvalidInput, match="unknown serving engine 'triton'"):
        serving_targets(["triton"])


def test_a_profile_records_the_limits_applied_and_gives_the_same_checks(build) -> None:
    adapter = read_adapter_dir(build("plain", r=8))
    for target in (ServingTarget("vllm"), ServingTarget("sglang", 32, ("qkv_proj",)), ServingTarget("lorax")):
        profile = target.profile(LLAMA)
        assert profile["engine"] == target.engine and profile["rules_from"]
        again, base = ServingTarget.from_profile(json.loads(json.dumps(profile)))
        assert serving_checks(again, adapter.config, adapter.tensors, base) == serving_checks(
            target, adapter.config, adapter.tensors, LLAMA
        )
    assert ServingTarget("vllm").profile(LLAMA)["max_lora_rank"] == 16  # vLLM's default, written down
