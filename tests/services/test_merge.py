"""The streaming merge against peft's merge_and_unload, variant by variant, on tiny real models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import tinymodels
from registry import DestinationExists, InvalidInput, Registry


def _peft_reference(kind: str, base: Path, adapter: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(state dict of peft's merge_and_unload, logits of the unmerged PeftModel) on the probe input."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(tinymodels.load_base(kind, base), str(adapter))
    model.eval()
    with torch.no_grad():
        out = model(tinymodels.probe_ids())
    logits = out.last_hidden_state if kind == "bert" else out.logits
    merged = model.merge_and_unload()
    return {k: v.detach().clone() for k, v in merged.state_dict().items()}, logits


def _load_merged(kind: str, directory: Path):
    model = tinymodels.load_base(kind, directory)
    model.eval()
    return model


def _outputs(kind: str, model) -> torch.Tensor:
    with torch.no_grad():
        out = model(tinymodels.probe_ids())
    return out.last_hidden_state if kind == "bert" else out.logits


VARIANTS = {
    "lora-all-linear": ("llama", {}),
    "rslora": ("llama", {"target_modules": ["q_proj", "v_proj", "down_proj"], "use_rslora": True, "lora_alpha": 16}),
    "rank-alpha-patterns": (
        "llama",
        {"target_modules": ["q_proj", "v_proj"], "rank_pattern": {"v_proj": 8}, "alpha_pattern": {"q_proj": 32}},
    ),
    "gpt2-conv1d-fan-in-fan-out": ("gpt2", {}),
    "lora-bias": ("gpt2", {"target_modules": ["c_attn"], "lora_bias": True}),
    "embedding-lora": ("llama", {"target_modules": ["embed_tokens", "q_proj"]}),
    "modules-to-save": ("llama", {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}),
    "dora": ("llama", {"target_modules": ["q_proj", "v_proj", "down_proj"], "use_dora": True}),
    "dora-conv1d": ("gpt2", {"target_modules": ["c_attn", "c_fc"], "use_dora": True}),
    "dora-embedding": ("llama", {"target_modules": ["embed_tokens"], "use_dora": True}),
    "bert-encoder": ("bert", {}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_merge_equals_peft_bit_for_bit_in_float32(
    sqlite_reg: Registry, tiny_models, tmp_path: Path, variant: str
) -> None:
    kind, lora = VARIANTS[variant]
    base = tiny_models[kind].base
    adapter = tinymodels.make_adapter(kind, base, tmp_path / "adapter", **lora) if lora else tiny_models[kind].adapter
    sqlite_reg.push(adapter, name="a", base=str(base))
    result = sqlite_reg.merge("a", out=tmp_path / "merged")
    assert result.merged_tensors > 0
    reference, peft_logits = _peft_reference(kind, base, adapter)
    merged = _load_merged(kind, tmp_path / "merged")
    ours = merged.state_dict()
    assert set(ours) == set(reference)
    different = [k for k in reference if not torch.equal(ours[k], reference[k])]
    assert different == [], f"tensors differing from peft's merge_and_unload: {different[:5]}"
    assert torch.allclose(_outputs(kind, merged), peft_logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("lora_bias", [False, True], ids=["lora-only-bias", "lora-only-bias-and-lora-bias"])
def test_a_trained_base_bias_merges_as_peft_merges_it(
    sqlite_reg: Registry, tiny_models, tmp_path: Path, lora_bias: bool
) -> None:
    """``bias="lora_only"`` saves the targeted modules' trained biases (``base_layer.bias``); peft's merge
    keeps them (adding ``lora_B.bias`` when there is one). The saved biases are changed here, as training
    would, so a merge that kept the base's biases would differ."""
    from safetensors.torch import load_file, save_file

    base = tiny_models["gpt2"].base
    adapter = tinymodels.make_adapter(
        "gpt2", base, tmp_path / "adapter", target_modules=["c_attn", "c_fc"], bias="lora_only", lora_bias=lora_bias
    )
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    trained = [k for k in tensors if k.endswith("base_layer.bias")]
    assert trained, sorted(tensors)
    generator = torch.Generator().manual_seed(3)
    for k in trained:
        tensors[k] = tensors[k] + torch.randn(tensors[k].shape, generator=generator)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    sqlite_reg.push(adapter, name="a", base=str(base))
    assert sqlite_reg.verify("a", base=str(base), mode="static").passed
    sqlite_reg.merge("a", out=tmp_path / "merged")
    reference, peft_logits = _peft_reference("gpt2", base, adapter)
    merged = _load_merged("gpt2", tmp_path / "merged")
    ours = merged.state_dict()
    different = [k for k in reference if not torch.equal(ours[k], reference[k])]
    assert different == [], f"tensors differing from peft's merge_and_unload: {different[:5]}"
    assert torch.allclose(_outputs("gpt2", merged), peft_logits, atol=1e-5, rtol=1e-4)


def test_weights_taller_than_one_block_are_still_bit_identical(sqlite_reg: Registry, tmp_path: Path) -> None:
    from registry.merge.kernels import _BLOCK_ELEMENTS

    rows_per_block = _BLOCK_ELEMENTS // 64  # hidden size 64
    base = tinymodels.save_base("llama", tmp_path / "tall", intermediate_size=2 * rows_per_block + 76)
    adapter = tinymodels.make_adapter(
        "llama", base, tmp_path / "adapter", target_modules=["gate_proj", "up_proj", "down_proj"]
    )
    sqlite_reg.push(adapter, name="a", base=str(base))
    sqlite_reg.merge("a", out=tmp_path / "merged")
    reference, _ = _peft_reference("llama", base, adapter)
    ours = _load_merged("llama", tmp_path / "merged").state_dict()
    assert ours["model.layers.0.mlp.gate_proj.weight"].shape[0] > 2 * rows_per_block
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_ia3_merge_equals_peft(sqlite_reg: Registry, tiny_models, tmp_path: Path) -> None:
    from peft import IA3Config

    base = tiny_models["llama"].base
    adapter = tinymodels.make_adapter(
        "llama",
        base,
        tmp_path / "ia3",
        peft_config=IA3Config(
            target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"], init_ia3_weights=False
        ),
    )
    sqlite_reg.push(adapter, name="ia3", base=str(base))
    sqlite_reg.merge("ia3", out=tmp_path / "merged")
    reference, _ = _peft_reference("llama", base, adapter)
    ours = _load_merged("llama", tmp_path / "merged").state_dict()
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_bfloat16_base_within_one_rounding(sqlite_reg: Registry, tmp_path: Path) -> None:
    model = tinymodels.build_model("llama", seed=4).to(torch.bfloat16)
    base = tmp_path / "bf16-base"
    model.save_pretrained(str(base))
    adapter = tinymodels.make_adapter("llama", base, tmp_path / "adapter")
    sqlite_reg.push(adapter, name="a", base=str(base))
    sqlite_reg.merge("a", out=tmp_path / "merged")
    reference, _ = _peft_reference("llama", base, adapter)
    ours = _load_merged("llama", tmp_path / "merged").state_dict()
    base_weights = tinymodels.load_base("llama", base).state_dict()
    for key, ref in reference.items():
        assert ours[key].dtype == torch.bfloat16
        # ours: a float32 fused sum rounded once. peft: the same single rounding when it upcasts the
        # adapter (its default), a double rounding when the adapter's weights stay 16-bit.
        # The stated bound covers both: |ours - peft| <= 2^-7 (|W| + |delta|), and |delta| <= |W| + |W'|.
        w = base_weights[key].float().abs()
        tolerance = 2**-7 * (2 * w + ref.float().abs()) + 1e-30
        assert bool(((ours[key].float() - ref.float()).abs() <= tolerance).all()), key


def test_sharded_base_keeps_its_layout_index_config_and_tokenizer(sqlite_reg: Registry, tmp_path: Path) -> None:
    model = tinymodels.build_model("llama", seed=2)
    base = tmp_path / "sharded"
    model.save_pretrained(str(base), max_shard_size="100KB")
    (base / "tokenizer.json").write_text('{"version": "1.0"}')
    (base / "LICENSE").write_text("license text")
    shards = sorted(p.name for p in base.glob("*.safetensors"))
    assert len(shards) > 2
    adapter = tinymodels.make_adapter("llama", base, tmp_path / "adapter")
    sqlite_reg.push(adapter, name="a", base=str(base))
    result = sqlite_reg.merge("a", out=tmp_path / "merged")
    out = tmp_path / "merged"
    assert sorted(p.name for p in out.glob("*.safetensors")) == shards
    assert json.loads((out / "model.safetensors.index.json").read_text()) == json.loads(
        (base / "model.safetensors.index.json").read_text()
    )
    for name in ("config.json", "generation_config.json", "tokenizer.json", "LICENSE"):
        assert (out / name).read_bytes() == (base / name).read_bytes()
    for f in result.files:  # the recorded digests are the files' sha256
        import hashlib

        assert hashlib.sha256((out / f.path).read_bytes()).hexdigest() == f.sha256
    # every shard holds the same tensor names, shapes and dtypes as the base's
    for name in shards:
        with safe_open(str(base / name), "pt") as a, safe_open(str(out / name), "pt") as b:
            assert list(a.keys()) == list(b.keys())
            for k in a.keys():  # noqa: SIM118
                assert a.get_slice(k).get_shape() == b.get_slice(k).get_shape()
    reference, _ = _peft_reference("llama", base, adapter)
    ours = _load_merged("llama", out).state_dict()
    assert all(torch.equal(ours[k], reference[k]) for k in reference)
    # untouched tensors are passed through byte for byte
    with safe_open(str(base / shards[0]), "pt") as a, safe_open(str(out / shards[0]), "pt") as b:
        assert torch.equal(a.get_tensor("model.embed_tokens.weight"), b.get_tensor("model.embed_tokens.weight"))


def test_dtype_conversion(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    sqlite_reg.merge("a", out=tmp_path / "merged", dtype="bfloat16")
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config.get("torch_dtype") == "bfloat16" or config.get("dtype") == "bfloat16"
    with safe_open(str(tmp_path / "merged" / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}  # noqa: SIM118
    reference, _ = _peft_reference("llama", llama.base, llama.adapter)
    ours = _load_merged("llama", tmp_path / "merged").state_dict()
    assert all(torch.equal(ours[k], reference[k].to(torch.bfloat16)) for k in reference)


def test_nf4_dequantized_base_precision(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    import bitsandbytes.functional as bnbf
    from safetensors.torch import load_file

    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base), quantization={"method": "nf4", "double_quant": True})
    plain = sqlite_reg.merge("a", out=tmp_path / "plain")
    assert plain.warnings and "--base-precision nf4-dequantized" in plain.warnings[0]
    result = sqlite_reg.merge("a", out=tmp_path / "nf4", base_precision="nf4-dequantized")
    assert result.base_precision == "nf4-dequantized" and not result.warnings
    base = load_file(str(llama.base / "model.safetensors"))
    lora = load_file(str(llama.adapter / "adapter_model.safetensors"))
    merged = load_file(str(tmp_path / "nf4" / "model.safetensors"))
    name = "model.layers.1.self_attn.q_proj"
    packed, state = bnbf.quantize_4bit(base[f"{name}.weight"], blocksize=64, compress_statistics=True, quant_type="nf4")
    dequantized = bnbf.dequantize_4bit(packed, state)
    delta = (lora[f"base_model.model.{name}.lora_B.weight"] @ lora[f"base_model.model.{name}.lora_A.weight"]) * (8 / 4)
    assert torch.equal(merged[f"{name}.weight"], dequantized + delta)
    assert not torch.equal(dequantized, base[f"{name}.weight"])  # the round trip did change the weights
    assert torch.equal(merged["model.norm.weight"], base["model.norm.weight"])  # untouched tensors stay
    sqlite_reg.push(llama.adapter, name="b", base=str(llama.base))  # trained without quantization
    with pytest.raises(InvalidInput, match="for adapters trained on a 4-bit"):
        sqlite_reg.merge("b", out=tmp_path / "x", base_precision="nf4-dequantized")


def test_non_mergeable_types_are_refused_with_the_reason(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    from peft import PromptTuningConfig

    prompt = tinymodels.make_adapter(
        "llama",
        llama.base,
        tmp_path / "pt",
        peft_config=PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    )
    sqlite_reg.push(prompt, name="pt", base=str(llama.base))
    with pytest.raises(InvalidInput, match=r"adds learned virtual tokens .* nothing to fold into the base"):
        sqlite_reg.merge("pt", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_inputs_write_nothing(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    other = tinymodels.save_base("llama", tmp_path / "other", seed=9)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(InvalidInput, match=r"not the ones a:1 was trained on.*--allow-base-mismatch"):
        sqlite_reg.merge("a", out=work / "out", base=str(other))
    allowed = sqlite_reg.merge("a", out=work / "allowed", base=str(other), allow_base_mismatch=True)
    assert allowed.allow_base_mismatch and allowed.base_fingerprint != allowed.recorded_base_fingerprint
    wide = tinymodels.save_base("llama", tmp_path / "wide", hidden_size=128)
    with pytest.raises(
        InvalidInput,
        match=r"does not fit this base.*adapter lora_B expects out_features 64, base weight is \[128, 128\]",
    ):
        sqlite_reg.merge("a", out=work / "out", base=str(wide), allow_base_mismatch=True)
    existing = work / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("keep")
    with pytest.raises(DestinationExists, match="--force"):
        sqlite_reg.merge("a", out=existing)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in work.iterdir()) == ["allowed", "existing"]  # no partial output, no temp dir
    sqlite_reg.merge("a", out=existing, force=True)
    assert (existing / "model.safetensors").exists() and not (existing / "keep.txt").exists()


def test_a_failure_mid_merge_leaves_nothing(
    sqlite_reg: Registry, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.merge import kernels as merge_module

    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    calls = {"n": 0}
    real = merge_module.lora_blocked

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(merge_module, "lora_blocked", failing)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(KeyboardInterrupt):
        sqlite_reg.merge("a", out=work / "merged")
    assert list(work.iterdir()) == []


def test_release_with_merge_records_the_checkpoint(reg: Registry, llama, tmp_path: Path) -> None:
    import hashlib

    ref = reg.push(llama.adapter, name="a", base=str(llama.base)).ref
    reg.review(ref)
    reg.approve(ref)
    out = tmp_path / "release"
    result = reg.release(ref, channel="production", merge=True, out=out, dtype="float32")
    merged = result.details["merged"]
    assert merged["method"].startswith("adapters-streaming-merge") and merged["dtype"] == "float32"
    assert merged["base"]["fingerprint"] == reg.show(ref).manifest.base.fingerprint
    for f in merged["files"]:
        assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    moves = reg.channels("a")[0].history
    assert moves[-1].details["merged"]["files"] == merged["files"]
    event = [e for e in reg.audit_log(ref) if e.action == "release"][-1]
    assert json.loads(event.payload)["details"]["merged"]["files"] == merged["files"]


def test_release_with_merge_refused_by_policy_writes_nothing(reg: Registry, llama, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("evals: [{metric: accuracy, min: 0.99}]\n")
    ref = reg.push(llama.adapter, name="a", base=str(llama.base), evals={"accuracy": 0.999}).ref
    reg.review(ref)
    reg.approve(ref)
    reg.set_policy(strict, channel="production")
    reg.add_evals(ref, {"accuracy": 0.5})
    from registry.errors import PolicyNotMet

    with pytest.raises(PolicyNotMet):
        reg.release(ref, channel="production", merge=True, out=tmp_path / "release")
    assert not (tmp_path / "release").exists()
    assert reg.channels("a") == []


@pytest.mark.parametrize("force", [False, True])
def test_merge_refuses_a_symlink_or_a_file_as_output(sqlite_reg: Registry, llama, tmp_path: Path, force: bool) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(DestinationExists, match=r"link is a symbolic link"):
        sqlite_reg.merge("a", out=tmp_path / "link", force=force)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(DestinationExists, match=r"file is a file, not a directory"):
        sqlite_reg.merge("a", out=tmp_path / "file", force=force)
    assert [p.name for p in elsewhere.iterdir()] == ["precious.txt"] and (tmp_path / "file").read_text() == "mine"


def test_a_merge_removes_the_leftovers_of_killed_merges(
    sqlite_reg: Registry, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import tempfile

    from registry._temporary import temporary_name

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process is gone
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))
    (tmp_path / "system-tmp").mkdir()
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    mine = str(os.getpid())
    leftovers = [
        tmp_path / temporary_name(".out.").replace(f".{mine}.", f".{pid}.", 1),
        tmp_path / "system-tmp" / temporary_name("adapters-merge-").replace(f"-{mine}.", f"-{pid}.", 1),
    ]
    for leftover in leftovers:
        leftover.mkdir()
        (leftover / "model.safetensors").write_bytes(b"half a shard")
    sqlite_reg.merge("a", out=tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert not any(p.exists() for p in leftovers)
    assert list((tmp_path / "system-tmp").iterdir()) == []
