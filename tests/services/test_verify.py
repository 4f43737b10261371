"""adapters verify: static checks from headers and a real load on a 4-bit NF4 base (CPU here),
with real peft, transformers and bitsandbytes on tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from sqlalchemy import text

import tinymodels
from registry import Registry
from tamper import tampering


def _check(report, name: str):
    matches = [c for c in report.checks if c.name == name]
    assert matches, f"no {name} check in {[c.name for c in report.checks]}"
    return matches[0]


def _push(reg: Registry, adapter: Path, base: Path, name: str = "a") -> str:
    return reg.push(adapter, name=name, base=str(base)).ref


# -- passing variants ------------------------------------------------------------------

VARIANTS = {
    "llama-all-linear": ("llama", {}),
    "gpt2-conv1d": ("gpt2", {}),
    "bert-encoder": ("bert", {}),
    "rslora": ("llama", {"target_modules": ["q_proj", "v_proj"], "use_rslora": True, "lora_alpha": 16}),
    "dora": ("llama", {"target_modules": ["q_proj", "v_proj", "down_proj"], "use_dora": True}),
    "embedding-lora": ("llama", {"target_modules": ["embed_tokens", "q_proj"]}),
    "modules-to-save": ("llama", {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}),
    "rank-pattern": (
        "llama",
        {"target_modules": ["q_proj", "v_proj"], "rank_pattern": {"v_proj": 8}, "alpha_pattern": {"v_proj": 32}},
    ),
    "lora-bias": ("llama", {"target_modules": ["q_proj"], "lora_bias": True}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_pass_static_and_load(sqlite_reg: Registry, tiny_models, tmp_path: Path, variant: str) -> None:
    kind, lora = VARIANTS[variant]
    base = tiny_models[kind].base
    adapter = tinymodels.make_adapter(kind, base, tmp_path / variant, **lora) if lora else tiny_models[kind].adapter
    ref = _push(sqlite_reg, adapter, base)
    report = sqlite_reg.verify(ref, str(base), device="cpu")
    failed = [(c.name, c.message) for c in report.checks if c.passed is False]
    assert report.passed, failed
    names = {c.name for c in report.checks}
    assert {
        "base-fingerprint",
        "tensor-shapes",
        "target-modules",
        "adapter-load",
        "adapter-keys",
        "finite-outputs",
        "adapter-effect",
    } <= names
    assert (
        report.device == "cpu"
        and report.quantization["method"] == "nf4"
        and report.quantization["double_quant"] is True
    )
    assert report.load_seconds > 0 and report.peak_memory_bytes > 0 and report.peak_memory_kind == "process_peak_rss"
    assert set(report.libraries) >= {"torch", "transformers", "peft", "bitsandbytes"}


def test_static_mode_reads_headers_only_and_never_imports_torch(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    import subprocess
    import sys

    _push(sqlite_reg, llama.adapter, llama.base)
    code = (
        "import sys\nfrom registry import Registry\n"
        f"r = Registry().verify('a', {str(llama.base)!r}, mode='static')\n"
        "print(r.passed, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]


def test_non_lora_types_say_what_was_not_checked(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    from peft import IA3Config, PromptTuningConfig

    ia3 = tinymodels.make_adapter(
        "llama",
        llama.base,
        tmp_path / "ia3",
        peft_config=IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]),
    )
    report = sqlite_reg.verify(_push(sqlite_reg, ia3, llama.base, "ia3"), str(llama.base), mode="static")
    assert report.passed and _check(report, "tensor-shapes").passed
    prompt = tinymodels.make_adapter(
        "llama",
        llama.base,
        tmp_path / "pt",
        peft_config=PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5),
    )
    report = sqlite_reg.verify(_push(sqlite_reg, prompt, llama.base, "pt"), str(llama.base), mode="static")
    assert report.passed
    assert _check(report, "token-dim").passed and _check(report, "virtual-tokens").passed
    assert report.not_checked and "not whether the learned prompt suits" in report.not_checked[0]
    wide = tiny_models_base(tmp_path, hidden_size=128)
    report = sqlite_reg.verify("pt", str(wide), mode="static", allow_base_mismatch=True)
    assert not report.passed
    assert _check(report, "token-dim").message == "the adapter's token_dim is 64, the base's hidden size is 128"


def tiny_models_base(tmp_path: Path, seed: int = 5, **overrides) -> Path:
    return tinymodels.save_base(
        "llama", tmp_path / f"base-{seed}-{'-'.join(f'{k}{v}' for k, v in overrides.items())}", seed=seed, **overrides
    )


def test_ia3_vector_of_the_wrong_width_is_named(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    from peft import IA3Config

    ia3 = tinymodels.make_adapter(
        "llama",
        llama.base,
        tmp_path / "ia3",
        peft_config=IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]),
    )
    _push(sqlite_reg, ia3, llama.base, "ia3")
    wide = tiny_models_base(tmp_path, intermediate_size=256)
    report = sqlite_reg.verify("ia3", str(wide), mode="static", allow_base_mismatch=True)
    shapes = _check(report, "tensor-shapes")
    assert shapes.passed is False
    assert "model.layers.0.mlp.down_proj: IA3 vector [1, 128] should be [1, 256]" in shapes.message


# -- failures, each with its exact reason ------------------------------------------------


def test_a_base_with_a_different_hidden_size(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    _push(sqlite_reg, llama.adapter, llama.base)
    wide = tiny_models_base(tmp_path, hidden_size=128, num_attention_heads=4)
    report = sqlite_reg.verify("a", str(wide), device="cpu")
    assert not report.passed
    shapes = _check(report, "tensor-shapes")
    assert shapes.passed is False
    assert (
        "model.layers.0.mlp.down_proj: adapter lora_B expects out_features 64, base weight is [128, 128]"
        in shapes.details
    )
    assert any(
        "self_attn.q_proj: adapter lora_A expects in_features 64, base weight is [128, 128]" in d
        for d in shapes.details
    )
    assert _check(report, "base-fingerprint").passed is False
    assert _check(report, "adapter-load").passed is False  # peft refuses the shapes too
    assert "size mismatch" in _check(report, "adapter-load").message


def test_a_resized_vocabulary_against_modules_to_save(sqlite_reg: Registry, tmp_path: Path) -> None:
    model = tinymodels.build_model("llama", seed=3)
    model.resize_token_embeddings(260)
    resized = tmp_path / "resized-base"
    model.save_pretrained(str(resized))
    adapter = tinymodels.make_adapter(
        "llama", resized, tmp_path / "a", target_modules=["q_proj"], modules_to_save=["lm_head", "embed_tokens"]
    )
    _push(sqlite_reg, adapter, resized)
    assert sqlite_reg.verify("a", str(resized), device="cpu").passed
    original = tiny_models_base(tmp_path, seed=3)
    report = sqlite_reg.verify("a", str(original), mode="static")
    shapes = _check(report, "tensor-shapes")
    assert shapes.passed is False
    assert (
        "lm_head: the adapter saves a [260, 64] tensor, the base has [256, 64]: a resized vocabulary (260 tokens vs the base's 256)"
        in shapes.message + " ".join(shapes.details)
    )
    assert any("model.embed_tokens" in d and "resized vocabulary" in d for d in shapes.details)


def test_a_silent_no_op_adapter(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    """Tensor names that match no module of the base: peft would load it, warn, and serve the base."""
    d = tinymodels.make_adapter("llama", llama.base, tmp_path / "a", target_modules=["q_proj", "v_proj"])
    weights = load_file(str(d / "adapter_model.safetensors"))
    save_file(
        {k.replace(".model.layers.", ".model.decoder.blocks."): v for k, v in weights.items()},
        str(d / "adapter_model.safetensors"),
    )
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["init_lora_weights"] = True  # as a trained adapter's config says: missing B weights load as zero
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    _push(sqlite_reg, d, llama.base)

    static = sqlite_reg.verify("a", str(llama.base), mode="static")
    shapes = _check(static, "tensor-shapes")
    assert shapes.passed is False
    assert "the base has no module 'model.decoder.blocks.0.self_attn.q_proj'" in shapes.message

    load = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu")
    assert _check(load, "adapter-effect").passed is False
    assert _check(load, "adapter-effect").message == "adapter has no effect on the base outputs"
    keys = _check(load, "adapter-keys")
    assert keys.passed is False and "were dropped" in keys.message and "not in the file" in keys.message


def test_a_base_whose_fingerprint_differs(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    _push(sqlite_reg, llama.adapter, llama.base)
    other = tiny_models_base(tmp_path, seed=11)  # same architecture, other weights
    report = sqlite_reg.verify("a", str(other), mode="static")
    fp = _check(report, "base-fingerprint")
    assert (
        fp.passed is False
        and "are not the ones recorded at push" in fp.message
        and "--allow-base-mismatch" in fp.message
    )
    assert _check(report, "tensor-shapes").passed  # the shapes alone would have let it through
    allowed = sqlite_reg.verify("a", str(other), mode="static", allow_base_mismatch=True)
    assert allowed.passed and allowed.allow_base_mismatch
    assert "MISMATCH ALLOWED" in _check(allowed, "base-fingerprint").message
    stored = sqlite_reg.show("a").verifications[-1].to_dict()
    assert stored["base"]["allow_mismatch"] is True
    assert stored["base"]["fingerprint"] != stored["base"]["recorded_fingerprint"]


def test_probe_reference_is_recorded_then_compared_and_a_corrupted_one_fails(reg: Registry, llama) -> None:
    _push(reg, llama.adapter, llama.base)
    first = reg.verify("a", str(llama.base), mode="load", device="cpu")
    assert first.passed and first.reference is None  # nothing to compare with yet: this one becomes the reference
    second = reg.verify("a", str(llama.base), mode="load", device="cpu")
    assert second.passed and _check(second, "probe-reference").passed
    assert second.reference["id"] == 1

    with tampering(reg) as s:  # an edit that does not keep the digest: detected as corruption
        sample = json.loads(s.execute(text("SELECT sample FROM probe_references")).scalar_one())
        sample["values"][0][0] += 1.0
        s.execute(text("UPDATE probe_references SET sample = :s"), {"s": json.dumps(sample)})
    corrupted = reg.verify("a", str(llama.base), mode="load", device="cpu")
    check = _check(corrupted, "probe-reference")
    assert check.passed is False and "is corrupted" in check.message

    from registry.verification.loadcheck import ProbeSample

    with tampering(reg) as s:  # a consistent record of other outputs: detected as drift
        fixed = ProbeSample.from_dict(sample)
        s.execute(text("UPDATE probe_references SET digest = :d"), {"d": fixed.digest})
    drifted = reg.verify("a", str(llama.base), mode="load", device="cpu")
    check = _check(drifted, "probe-reference")
    assert check.passed is False and "drifted from the reference" in check.message

    reports = reg.show("a").verifications
    assert [r.passed for r in reports] == [True, True, False, False]  # appended, never edited
    assert len({r.id for r in reports}) == 4


def test_reports_are_shown_in_full(reg: Registry, llama) -> None:
    _push(reg, llama.adapter, llama.base)
    report = reg.verify("a", str(llama.base), mode="static")
    shown = reg.show("a").to_dict()["verifications"]
    assert shown == [report.to_dict()]
    assert shown[0]["base"]["fingerprint"] == reg.show("a").manifest.base.fingerprint


def test_fp4_without_double_quant_is_recorded(sqlite_reg: Registry, llama) -> None:
    _push(sqlite_reg, llama.adapter, llama.base)
    report = sqlite_reg.verify(
        "a", str(llama.base), mode="load", device="cpu", quant="fp4", double_quant=False, compute_dtype="bfloat16"
    )
    assert report.passed
    assert report.quantization == {
        "method": "fp4",
        "double_quant": False,
        "compute_dtype": "bfloat16",
        "device_type": "cpu",
    }


def test_base_defaults_to_the_recorded_one_and_errors_when_absent(sqlite_reg: Registry, llama) -> None:
    from registry import NotFound

    _push(sqlite_reg, llama.adapter, llama.base)
    assert sqlite_reg.verify("a", mode="static").passed
    sqlite_reg.push(llama.adapter, name="b", base="org/not-here")
    with pytest.raises(NotFound, match="not on this machine"):
        sqlite_reg.verify("b", mode="static")
    assert sqlite_reg.show("b").verifications == ()  # a check that could not run records nothing


@pytest.mark.gpu
def test_load_check_on_cuda(sqlite_reg: Registry, llama) -> None:
    _push(sqlite_reg, llama.adapter, llama.base)
    report = sqlite_reg.verify("a", str(llama.base), mode="load", device="cuda")
    assert report.passed, [(c.name, c.message) for c in report.failures]
    assert report.device == "cuda" and report.peak_memory_kind == "cuda_max_allocated"
    assert report.quantization["compute_dtype"] == "bfloat16"
