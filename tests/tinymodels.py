"""Tiny random models and real peft adapters for tests (no hub, no downloads).

Each builder saves a transformers model with random weights, and ``make_adapter``
wraps it with peft (``init_lora_weights=False`` so the adapter is not a no-op) and
saves the adapter exactly as a training job would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

KINDS = ("llama", "gpt2", "bert")


def build_model(kind: str, seed: int = 0, **overrides: Any) -> Any:
    """A tiny random model: ``llama``, ``gpt2``, ``bert`` (the KINDS), or ``t5`` (an encoder-decoder, built on request
    only: it is not in KINDS, which the session's ``tiny_models`` fixture builds)."""
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if kind == "llama":
        cfg = dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=256,
            max_position_embeddings=64,
        )
        cfg.update(overrides)
        return LlamaForCausalLM(LlamaConfig(**cfg))
    if kind == "gpt2":
        # widths of at least 64: bitsandbytes' CPU 4-bit kernels work in blocks of 64
        cfg = dict(n_embd=64, n_layer=2, n_head=2, vocab_size=128, n_positions=64, bos_token_id=0, eos_token_id=0)
        cfg.update(overrides)
        return GPT2LMHeadModel(GPT2Config(**cfg))
    if kind == "bert":
        cfg = dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            vocab_size=128,
            max_position_embeddings=64,
        )
        cfg.update(overrides)
        return BertModel(BertConfig(**cfg))
    if kind == "t5":
        from transformers import T5Config, T5ForConditionalGeneration

        # inner width num_heads * d_kv = 64: bitsandbytes' CPU 4-bit kernels work in blocks of 64
        cfg = dict(
            d_model=64,
            d_ff=128,
            d_kv=32,
            num_heads=2,
            num_layers=2,
            num_decoder_layers=2,
            vocab_size=128,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
        cfg.update(overrides)
        return T5ForConditionalGeneration(T5Config(**cfg))
    raise ValueError(kind)


def save_base(kind: str, directory: Path, seed: int = 0, **overrides: Any) -> Path:
    build_model(kind, seed, **overrides).save_pretrained(str(directory))
    return directory


DEFAULT_TARGETS = {"llama": "all-linear", "gpt2": ["c_attn", "c_proj"], "bert": ["query", "value"], "t5": ["q", "v"]}

#: ``task`` of :func:`load_base`: the head a fine-tune puts on the base, and its number of labels.
TASK_HEADS = {"seq-cls": ("AutoModelForSequenceClassification", 3), "token-cls": ("AutoModelForTokenClassification", 5)}


def make_adapter(
    kind: str,
    base_dir: Path,
    out_dir: Path,
    seed: int = 1,
    peft_config: Any = None,
    task: str | None = None,
    perturb: bool = False,
    **lora: Any,
) -> Path:
    """Save a peft adapter for the base in ``base_dir`` (LoRA by default; ``lora`` overrides LoraConfig).

    ``task`` (a key of TASK_HEADS) loads the base with that head first, as a classification fine-tune does.
    ``perturb`` adds noise to every trainable parameter, as training would: tuners that start as the identity
    (IA3, the adaption prompt's gates, LN tuning) then change the outputs.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    model = load_base(kind, base_dir, task)
    if peft_config is None:
        options: dict[str, Any] = dict(r=4, lora_alpha=8, target_modules=DEFAULT_TARGETS[kind], init_lora_weights=False)
        if kind == "gpt2":
            options["fan_in_fan_out"] = True
        options.update(lora)
        peft_config = LoraConfig(**options)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, peft_config)
    if perturb:
        with torch.no_grad():
            for p in peft_model.parameters():
                if p.requires_grad and p.is_floating_point():
                    p.add_(0.05 * torch.randn_like(p))
    peft_model.save_pretrained(str(out_dir))
    return out_dir


def load_base(kind: str, base_dir: Path, task: str | None = None) -> Any:
    import transformers

    if task is not None:
        name, labels = TASK_HEADS[task]
        return getattr(transformers, name).from_pretrained(str(base_dir), num_labels=labels)
    if kind == "t5":
        return transformers.AutoModelForSeq2SeqLM.from_pretrained(str(base_dir))
    loader = transformers.AutoModel if kind == "bert" else transformers.AutoModelForCausalLM
    return loader.from_pretrained(str(base_dir))


def probe_ids(vocab: int = 128, length: int = 12) -> Any:
    import torch

    return (torch.arange(length) * 7 % vocab).unsqueeze(0)


def adapter_outputs(kind: str, base_dir: Path, adapter_dir: Path) -> Any:
    """The outputs of base + adapter (loaded with PeftModel.from_pretrained) on a fixed input."""
    import torch
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base(kind, base_dir), str(adapter_dir))
    model.eval()
    with torch.no_grad():
        out = model(probe_ids())
    return out.last_hidden_state if kind == "bert" else out.logits
