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

PROMPT_TYPES = frozenset({"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING", "CPT"})
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


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


def static_checks(
    facts: PeftFacts,
    config: Mapping[str, Any],
    adapter_tensors: Sequence[TensorInfo],
    base_config: Mapping[str, Any],
) -> tuple[list[Check], list[str]]:
    checks: list[Check] = []
    hidden = _hidden_size(base_config)
    token_dim = config.get("token_dim")
    if hidden is None:
        checks.append(Check("token-dim", None, "not checked: the base config gives no hidden size"))
    else:
        checks.append(
            Check(
                "token-dim",
                token_dim == hidden,
                f"the adapter's token_dim is {token_dim}, the base's hidden size is {hidden}",
            )
        )
    layers = _config_int(base_config, _LAYER_KEYS)
    if facts.type == "PREFIX_TUNING" and isinstance(config.get("num_layers"), int) and layers is not None:
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
        want = virtual * submodules
        checks.append(
            Check(
                "virtual-tokens",
                rows == want,
                f"prompt_embeddings has {rows} rows; num_virtual_tokens x num_transformer_submodules is {want}",
            )
        )
        if facts.type != "PREFIX_TUNING" and hidden is not None and len(embeddings[0].shape) == 2:
            width = embeddings[0].shape[1]
            checks.append(
                Check(
                    "prompt-width",
                    width == hidden,
                    f"prompt_embeddings are {width} wide, the base's hidden size is {hidden}",
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
