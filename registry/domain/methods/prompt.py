"""Prompt learning: prompt tuning, p-tuning, prefix tuning, multitask prompt tuning, CPT.

These adapters add learned virtual tokens (or key/value prefixes) to the input instead of
changing the base's weights, so their tensors have no base module to be checked against: their
dimensions are checked against the base's config, and nothing can be merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.domain.adapterdir import PeftFacts, TensorInfo
from registry.domain.methods.base import Check, MergePlan, Shapes

__all__ = ["METHOD", "PROMPT_TYPES", "PromptLearning", "static_checks"]

PROMPT_TYPES = frozenset({"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING", "CPT", "CARTRIDGE"})
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
_HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads")


def _hidden_size(config: Mapping[str, Any]) -> int | None:
    for key in _HIDDEN_KEYS:
        if isinstance(config.get(key), int):
            return int(config[key])
    text = config.get("text_config")
    return _hidden_size(text) if isinstance(text, Mapping) else None


def _config_int(config: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def expected_token_dim(peft_type: str, base_config: Mapping[str, Any]) -> int | None:
    """The ``token_dim`` peft gives an adapter for this base: the hidden size, except for prefix tuning on
    grouped-query attention, whose prefixes are keys and values of the key/value heads only
    (``hidden // heads * kv_heads``; peft's ``_prepare_prompt_learning_config``)."""
    hidden = _hidden_size(base_config)
    if hidden is None or peft_type != "PREFIX_TUNING":
        return hidden
    text = base_config.get("text_config")
    config = text if isinstance(text, Mapping) and _config_int(base_config, _HEAD_KEYS) is None else base_config
    heads = _config_int(config, _HEAD_KEYS)
    kv = _config_int(config, ("num_key_value_heads",))
    if heads and kv and kv != heads:
        return hidden // heads * kv
    return hidden


def static_checks(
    facts: PeftFacts,
    config: Mapping[str, Any],
    adapter_tensors: Sequence[TensorInfo],
    base_config: Mapping[str, Any],
) -> tuple[list[Check], list[str]]:
    checks: list[Check] = []
    hidden = _hidden_size(base_config)
    want_dim = expected_token_dim(facts.type, base_config)
    token_dim = config.get("token_dim")
    if want_dim is None:
        checks.append(Check("token-dim", None, "not checked: the base config gives no hidden size"))
    else:
        what = (
            "key/value width (grouped-query attention: hidden / heads * kv_heads)"
            if want_dim != hidden
            else "hidden size"
        )
        checks.append(
            Check(
                "token-dim",
                token_dim == want_dim,
                f"the adapter's token_dim is {token_dim}, the base's {what} is {want_dim}",
            )
        )
    layers = _config_int(base_config, _LAYER_KEYS)
    prefix = facts.type == "PREFIX_TUNING"
    if prefix and isinstance(config.get("num_layers"), int) and layers is not None:
        checks.append(
            Check(
                "num-layers",
                config["num_layers"] == layers,
                f"the adapter has prefixes for {config['num_layers']} layers, the base has {layers}",
            )
        )
    embeddings = [t for t in adapter_tensors if t.name.endswith("prompt_embeddings")]
    virtual = config.get("num_virtual_tokens")
    submodules = config.get("num_transformer_submodules") or 1
    if embeddings and isinstance(virtual, int):
        rows = embeddings[0].shape[0]
        # peft's PrefixEncoder has one row per virtual token; PromptEmbedding one per token and submodule
        want = virtual if prefix else virtual * submodules
        what = "num_virtual_tokens" if prefix else "num_virtual_tokens x num_transformer_submodules"
        checks.append(Check("virtual-tokens", rows == want, f"prompt_embeddings has {rows} rows; {what} is {want}"))
        width = embeddings[0].shape[1] if len(embeddings[0].shape) == 2 else None
        if not prefix and hidden is not None and width is not None:
            checks.append(
                Check(
                    "prompt-width",
                    width == hidden,
                    f"prompt_embeddings are {width} wide, the base's hidden size is {hidden}",
                )
            )
        if prefix and width is not None and isinstance(token_dim, int) and isinstance(config.get("num_layers"), int):
            # a key and a value prefix per layer (with prefix_projection, peft saves the projected prefixes)
            want_width, what = 2 * token_dim * config["num_layers"], "2 x token_dim x num_layers"
            checks.append(
                Check(
                    "prefix-width",
                    width == want_width,
                    f"the saved prefixes are {width} wide; {what} is {want_width}",
                )
            )
    unchecked = [
        f"{facts.type} adapters add virtual tokens instead of modifying weights: only their dimensions were checked "
        "against the base config, not whether the learned prompt suits this base's embedding space"
    ]
    return checks, unchecked


class PromptLearning:
    peft_types = PROMPT_TYPES

    def split(self, name: str) -> tuple[str, str] | None:
        return None  # no tensor of a prompt-learning adapter belongs to a base module

    def check(
        self, shapes: Shapes, tensor: str, path: str, role: str, shape: tuple[int, ...], config: Mapping[str, Any]
    ) -> None:
        return None

    def trainable(self, role: str, dtype: str) -> bool:
        return True

    def merge_refusal(self, config: Mapping[str, Any], ref: str) -> str | None:
        peft_type = str(config.get("peft_type", "")).upper()
        return (
            f"{ref} is a {peft_type} adapter: it adds learned virtual tokens (or key/value prefixes) to the input "
            "instead of changing weights, so there is nothing to fold into the base; serve it with peft"
        )

    def plan(self, plan: MergePlan, config: Mapping[str, Any], module: str, role: str, key: str) -> None:
        return None

    def finish(self, plan: MergePlan, base: Mapping[str, tuple[int, ...]]) -> None:
        return None


METHOD = PromptLearning()
