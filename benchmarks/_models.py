"""Large random models for the benchmarks, written straight to safetensors shards.

Instantiating a 1.1B-parameter model in transformers to save it would take minutes on a
small machine; these builders write the exact tensors ``save_pretrained`` would (names,
shapes, dtypes, sharding and index) from random data, in a fraction of the time, and
cache them under ``benchmarks/out`` (git-ignored) for the next run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

OUT = Path(os.environ.get("ADAPTERS_BENCH_DIR", Path(__file__).resolve().parent / "out"))

LLAMA_1B = dict(
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    vocab_size=32000,
)
LLAMA_SMALL = dict(  # ~45M parameters, 90 MB in bf16: a quick run on a shared machine
    hidden_size=512,
    intermediate_size=1408,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=4,
    vocab_size=32000,
)
LLAMA_7B = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=32000,
)
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def llama_shapes(cfg: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Every tensor of a LlamaForCausalLM state dict, in save order."""
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    kv = cfg["num_key_value_heads"] * (h // cfg["num_attention_heads"])
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (cfg["vocab_size"], h)}
    for layer in range(n):
        p = f"model.layers.{layer}"
        shapes.update(
            {
                f"{p}.self_attn.q_proj.weight": (h, h),
                f"{p}.self_attn.k_proj.weight": (kv, h),
                f"{p}.self_attn.v_proj.weight": (kv, h),
                f"{p}.self_attn.o_proj.weight": (h, h),
                f"{p}.mlp.gate_proj.weight": (i, h),
                f"{p}.mlp.up_proj.weight": (i, h),
                f"{p}.mlp.down_proj.weight": (h, i),
                f"{p}.input_layernorm.weight": (h,),
                f"{p}.post_attention_layernorm.weight": (h,),
            }
        )
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (cfg["vocab_size"], h)
    return shapes


def _config(cfg: dict[str, int], dtype: str) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "dtype": dtype,
        "torch_dtype": dtype,
        **cfg,
    }


def write_llama(
    directory: Path, cfg: dict[str, int], shards: int = 3, dtype: str = "bfloat16", device: str = "cpu"
) -> Path:
    """A random Llama saved as ``shards`` safetensors files with an index, like save_pretrained."""
    import torch
    from safetensors.torch import save_file

    marker = directory / ".complete"
    if marker.exists() and json.loads(marker.read_text()) == {"cfg": cfg, "shards": shards, "dtype": dtype}:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    shapes = llama_shapes(cfg)
    torch_dtype = getattr(torch, dtype)
    itemsize = torch.empty((), dtype=torch_dtype).element_size()
    total = sum(_numel(s) for s in shapes.values()) * itemsize
    per_shard = total / shards
    groups: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        if size >= per_shard * len(groups) and len(groups) < shards:
            groups.append([])
        groups[-1].append(name)
        size += _numel(shape) * itemsize
    weight_map = {}
    generator = torch.Generator(device=device).manual_seed(0)
    for index, names in enumerate(groups, start=1):
        filename = f"model-{index:05d}-of-{len(groups):05d}.safetensors"
        tensors = {}
        for name in names:
            shape = shapes[name]
            if len(shape) == 1:
                tensors[name] = torch.ones(shape, dtype=torch_dtype)
            else:
                t = torch.empty(shape, dtype=torch_dtype, device=device)
                t.normal_(0.0, 0.02, generator=generator)
                tensors[name] = t.cpu()
            weight_map[name] = filename
        save_file(tensors, str(directory / filename), metadata={"format": "pt"})
        del tensors
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    (directory / "config.json").write_text(json.dumps(_config(cfg, dtype), indent=2))
    (directory / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    marker.write_text(json.dumps({"cfg": cfg, "shards": shards, "dtype": dtype}))
    return directory


def _linear_modules(cfg: dict[str, int]) -> list[tuple[str, int, int]]:
    """(the adapter's tensor prefix, out_features, in_features) of every linear layer, in save order."""
    out = []
    for name, shape in llama_shapes(cfg).items():
        module = name[: -len(".weight")]
        if module.endswith(LINEAR):
            out.append((f"base_model.model.{module}", shape[0], shape[1]))
    return out


def write_lora(
    directory: Path, cfg: dict[str, int], r: int = 16, alpha: int = 32, dtype: str = "bfloat16", seed: int = 1
) -> Path:
    """An r-rank LoRA on every linear layer of a Llama with ``cfg``, saved as peft saves it."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for prefix, out_f, in_f in _linear_modules(cfg):
        tensors[f"{prefix}.lora_A.weight"] = (torch.randn((r, in_f), generator=generator) / in_f**0.5).to(torch_dtype)
        tensors[f"{prefix}.lora_B.weight"] = (torch.randn((out_f, r), generator=generator) * 0.01).to(torch_dtype)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    (directory / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": r,
                "lora_alpha": alpha,
                "lora_dropout": 0.0,
                "target_modules": sorted(LINEAR),
                "bias": "none",
                "fan_in_fan_out": False,
                "use_rslora": False,
                "use_dora": False,
                "modules_to_save": None,
                "rank_pattern": {},
                "alpha_pattern": {},
                "init_lora_weights": True,
                "inference_mode": True,
                "base_model_name_or_path": None,
                "revision": None,
            },
            indent=2,
        )
    )
    return directory


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def write_loha(
    directory: Path, cfg: dict[str, int], r: int = 16, alpha: int = 32, dtype: str = "bfloat16", seed: int = 1
) -> Path:
    """An r-rank LoHa on every linear layer of a Llama with ``cfg``, saved as peft saves it (a non-LoRA
    tuner: the merge builds peft's own LoHa layer around each base module)."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for prefix, out_f, in_f in _linear_modules(cfg):
        for w in ("w1", "w2"):
            tensors[f"{prefix}.hada_{w}_a"] = (torch.randn((out_f, r), generator=generator) * 0.1).to(torch_dtype)
            tensors[f"{prefix}.hada_{w}_b"] = (torch.randn((r, in_f), generator=generator) * 0.1).to(torch_dtype)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LOHA", "task_type": "CAUSAL_LM", "r": r, "alpha": alpha, "rank_dropout": 0.0,
        "module_dropout": 0.0, "target_modules": sorted(LINEAR), "use_effective_conv2d": False, "init_weights": True,
        "inference_mode": True, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": None,
        "layers_to_transform": None, "layers_pattern": None, "exclude_modules": None,
        "base_model_name_or_path": None, "revision": None,
    }  # fmt: skip
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return directory
