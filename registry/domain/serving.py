"""Serving-engine targets: the rules vLLM, SGLang, LoRAX and TGI apply when they load a PEFT adapter.

An adapter that loads with peft can still be refused by the engine that serves it, or, worse, be
loaded with part of it silently dropped. Each rule here yields one :class:`Check` with a sentence
saying what the engine does and the way out. The rules read only the adapter's config
(``adapter_config.json``), the names and shapes its safetensors header declares, and, when a base
is at hand, two facts of its ``config.json`` (:class:`BaseFacts`); nothing is loaded, so they run in
every ``adapters verify --mode`` and in the policy's ``serving`` rule, which the registry evaluates
from the version's stored blobs.

Where each rule comes from (read from the engines' own code; paths relative to each repository):

vLLM 0.34.0 (vllm-project/vllm)
  * ``vllm/config/lora.py`` ``LoRAConfig.max_lora_rank``: ``MaxLoRARanks = Literal[1, 8, 16, 32, 64,
    128, 256, 320, 512]``, default 16; ``vllm/engine/arg_utils.py``: ``--max-lora-rank``,
    ``--lora-target-modules``. Smaller ranks are padded into the ``max_lora_rank``-wide buffers
    (``vllm/lora/layers/base_linear.py`` ``set_lora``), so the allowed set constrains the server's
    setting, and the adapter's rank must only be within it.
  * ``vllm/lora/peft_helper.py`` ``PEFTHelper.from_dict`` (``r``, ``lora_alpha``, ``target_modules``
    required), ``validate_legal`` (largest of ``r`` and ``rank_pattern`` <= ``max_lora_rank``;
    ``bias`` must be ``"none"``), ``_validate_features`` (``modules_to_save`` only ``classifier`` /
    ``score``; no DoRA, no ``lora_bias``, no aLoRA, no ``layer_replication``, no BD-LoRA, no QALoRA),
    ``_init_is_supported`` (string ``init_lora_weights`` only gaussian / eva / orthogonal / mica /
    lora_ga: PiSSA, OLoRA, CorDA and LoftQ change the base weights).
  * ``vllm/lora/utils.py`` ``parse_fine_tuned_lora_name`` (a tensor is ``lora_A``/``lora_B``
    ``.weight``, ``lora_embedding_A``/``B`` or a ``score``/``classifier`` head, else "is unsupported
    LoRA weight"), ``is_base_embedding_weights`` (``embed_tokens``/``lm_head`` ``.base_layer.weight``
    skipped); ``vllm/lora/lora_model.py`` ``LoRAModel.from_lora_tensors`` (one classification head;
    an embedding LoRA as wide as the base vocabulary); ``vllm/lora/model_manager.py`` with
    ``is_in_target_modules`` (``--lora-target-modules`` wraps only those modules; packed
    ``qkv_proj``/``gate_up_proj`` match their parts). There is no added-vocabulary support left
    (``lora_extra_vocab_size`` was removed).

SGLang 0.5.23 (sgl-project/sglang)
  * ``python/sglang/srt/lora/lora_config.py`` ``LoRAConfig.__init__`` (``target_modules``, ``r``,
    ``lora_alpha`` read; ``use_dora``; added tokens from ``added_tokens.json`` with ids past the base
    vocabulary); ``lora_manager.py`` ``LoRAManager.validate_new_adapter`` (refuses DoRA and added
    tokens) and ``init_lora_shapes`` (a string ``target_modules`` other than ``all``/``all-linear`` is
    refused; targets must be within ``--lora-target-modules``); ``mem_pool.py``
    ``LoRAMemoryPool.can_support`` (``r <= --max-lora-rank``); ``utils.py``
    ``get_normalized_target_modules`` (q/k/v -> qkv_proj, gate/up -> gate_up_proj, ...);
    ``lora.py`` ``LoRAAdapter._process_weight`` (per-layer A/B weights, ``embed_tokens``/``lm_head``
    only when targeted: other full weights are not loaded); ``srt/utils/common.py``
    ``SUPPORTED_LORA_TARGET_MODULES`` (the choices of ``--lora-target-modules``). Only ``r`` and
    ``lora_alpha`` are read: ``rank_pattern``/``alpha_pattern`` are not.

LoRAX (predibase/lorax, main at a7394ba3)
  * ``server/lorax_server/adapters/__init__.py`` ``load_adapter_config`` and ``adapters/lora.py``
    ``LoraConfig.load`` (a LoRA config; only ``r``, ``target_modules``, ``fan_in_fan_out``,
    ``lora_alpha``, ``use_rslora`` read), ``LoraConfig.map_weights_for_model`` (only
    ``<module>.lora_A.weight``/``lora_B.weight`` of the model's adapter layers),
    ``LoraWeights.load`` (every module scaled by ``lora_alpha / r``);
    ``server/lorax_server/models/model.py`` ``Model.load_adapter`` (the rest is logged as "unused
    adapter weights" and dropped; "This model does not support adapter loading."); the
    per-architecture lists: ``ADAPTER_LAYERS`` and ``adapter_target_to_layer`` in
    ``server/lorax_server/models/flash_*.py`` and ``bloom.py``, chosen by ``model_type`` in
    ``models/__init__.py`` ``get_model``.

TGI (huggingface/text-generation-inference, main at db931fcf, 3.3.6-dev0)
  * ``server/text_generation_server/adapters/lora.py`` ``LoraConfig`` (from LoRAX: the same reading
    of the config and weights, ``LoraWeights.prepare_weights`` scaling by ``lora_alpha / r``);
    ``server/text_generation_server/models/__init__.py`` ``get_model_with_lora_adapters`` (the layer
    types q/k/v/o/qkv_proj, gate/up/down_proj, c_fc, c_proj; "unused adapter weights" logged and
    dropped); ``server/text_generation_server/utils/adapter.py`` ``build_layer_weight_lookup``,
    ``get_attn_weights``, ``get_mlp_weights`` (``model.layers.N.self_attn.*`` and
    ``model.layers.N.mlp.*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry.domain.adapterdir import TensorInfo
from registry.domain.methods.base import Check
from registry.domain.serving_rules import (
    ENGINE_NAMES,
    ENGINE_RULES,
    RULES_FROM,
    SGLANG_TARGET_MODULES,
    VLLM_DEFAULT_MAX_LORA_RANK,
    VLLM_MAX_LORA_RANKS,
    Adapter,
    classify,
)
from registry.errors import InvalidInput
from registry.types import SERVING_ENGINES

__all__ = [
    "ENGINE_NAMES",
    "BaseFacts",
    "ServingTarget",
    "serving_checks",
    "serving_targets",
    "target_problem",
]

#: The engines that have --max-lora-rank and --lora-target-modules settings.
_ONLY_VLLM_SGLANG = ("vllm", "sglang")


@dataclass(frozen=True)
class BaseFacts:
    """What the rules read from the base's ``config.json``: LoRAX's lists depend on ``model_type``,
    added tokens are told from the embedding's rows against ``vocab_size``."""

    model_type: str | None = None
    vocab_size: int | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> BaseFacts:
        config = config or {}
        text = config.get("text_config") if isinstance(config.get("text_config"), Mapping) else {}
        model_type = config.get("model_type")
        vocab = config.get("vocab_size", (text or {}).get("vocab_size"))
        return cls(
            model_type if isinstance(model_type, str) else None,
            vocab if isinstance(vocab, int) and not isinstance(vocab, bool) and vocab > 0 else None,
        )


def target_problem(
    engine: Any, max_lora_rank: Any = None, lora_target_modules: Any = None, model_type: Any = None
) -> tuple[str, str] | None:
    """``(field, why)`` for the first value a serving target cannot have, else None."""
    if engine not in SERVING_ENGINES:
        return "engine", f"unknown serving engine {engine!r}; use one of {', '.join(SERVING_ENGINES)}"
    name = ENGINE_NAMES[engine]
    if max_lora_rank is not None:
        if engine not in _ONLY_VLLM_SGLANG:
            return "max_lora_rank", f"{name} has no --max-lora-rank setting (it applies to vllm and sglang)"
        if not isinstance(max_lora_rank, int) or isinstance(max_lora_rank, bool) or max_lora_rank < 1:
            return "max_lora_rank", f"max_lora_rank must be a positive integer, not {max_lora_rank!r}"
        if engine == "vllm" and max_lora_rank not in VLLM_MAX_LORA_RANKS:
            allowed = ", ".join(map(str, VLLM_MAX_LORA_RANKS))
            return "max_lora_rank", (
                f"vLLM accepts --max-lora-rank only from {allowed} (vllm/config/lora.py MaxLoRARanks), not "
                f"{max_lora_rank}; smaller adapter ranks are padded, so use the next one up"
            )
    if lora_target_modules is not None:
        if engine not in _ONLY_VLLM_SGLANG:
            return "lora_target_modules", f"{name} has no --lora-target-modules setting (it applies to vllm and sglang)"
        if (
            not isinstance(lora_target_modules, (list, tuple))
            or not lora_target_modules
            or not all(isinstance(m, str) and m for m in lora_target_modules)
        ):
            return (
                "lora_target_modules",
                f"lora_target_modules must be a list of module names, not {lora_target_modules!r}",
            )
        if engine == "sglang":
            unknown = [m for m in lora_target_modules if m not in (*SGLANG_TARGET_MODULES, "all")]
            if unknown:
                return "lora_target_modules", (
                    f"SGLang's --lora-target-modules accepts only {', '.join(SGLANG_TARGET_MODULES)} or all, not "
                    f"{', '.join(unknown)}"
                )
            if "all" in lora_target_modules and len(lora_target_modules) > 1:
                return "lora_target_modules", "SGLang's --lora-target-modules all must be given alone"
    if model_type is not None:
        if engine != "lorax":
            return "model_type", f"{name}'s rules do not depend on the base's model_type (it applies to lorax)"
        if not isinstance(model_type, str) or not model_type:
            return "model_type", f"model_type must be the base's config.json model_type, not {model_type!r}"
    return None


@dataclass(frozen=True)
class ServingTarget:
    """An engine and the limits it is started with (None: the engine's default or inference)."""

    engine: str
    max_lora_rank: int | None = None
    lora_target_modules: tuple[str, ...] | None = None
    model_type: str | None = None  # LoRAX: the base's model_type where no base config.json is at hand

    def __post_init__(self) -> None:
        modules = list(self.lora_target_modules) if self.lora_target_modules is not None else None
        problem = target_problem(self.engine, self.max_lora_rank, modules, self.model_type)
        if problem is not None:
            raise InvalidInput(problem[1])

    @property
    def name(self) -> str:
        return ENGINE_NAMES[self.engine]

    @property
    def rank_limit(self) -> int | None:
        """The rank limit the checks apply: vLLM's default 16 when none is given."""
        if self.engine == "vllm" and self.max_lora_rank is None:
            return VLLM_DEFAULT_MAX_LORA_RANK
        return self.max_lora_rank

    def describe(self) -> str:
        """``vLLM (--max-lora-rank 16)``: the engine and the limits applied."""
        limits = []
        if self.rank_limit is not None:
            limits.append(f"--max-lora-rank {self.rank_limit}")
        if self.lora_target_modules is not None:
            limits.append(f"--lora-target-modules {' '.join(self.lora_target_modules)}")
        if self.model_type is not None:
            limits.append(f"model_type {self.model_type}")
        return self.name + (f" ({', '.join(limits)})" if limits else "")

    def profile(self, base: BaseFacts) -> dict[str, Any]:
        """What a report records of this target: the engine, the limits applied, the base facts read."""
        return {
            "engine": self.engine,
            "max_lora_rank": self.rank_limit,
            "lora_target_modules": list(self.lora_target_modules) if self.lora_target_modules is not None else None,
            "model_type": self.model_type or base.model_type,
            "vocab_size": base.vocab_size,
            "rules_from": RULES_FROM[self.engine],
        }

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> tuple[ServingTarget, BaseFacts]:
        """The target and base facts a recorded profile was checked with."""
        modules = profile.get("lora_target_modules")
        engine = profile["engine"]
        model_type = profile.get("model_type")
        target = cls(
            engine,
            profile.get("max_lora_rank"),
            tuple(modules) if modules is not None else None,
            model_type if engine == "lorax" else None,
        )
        vocab = profile.get("vocab_size")
        return target, BaseFacts(model_type, vocab if isinstance(vocab, int) else None)


def serving_targets(
    engines: Sequence[str], max_lora_rank: int | None = None, lora_target_modules: Sequence[str] | None = None
) -> tuple[ServingTarget, ...]:
    """The targets ``adapters verify --target`` names, with ``--max-lora-rank`` / ``--lora-target-modules``
    applied to each engine that has the setting (vllm, sglang); an option no named engine has is refused."""
    engines = list(dict.fromkeys(engines))
    for engine in engines:
        problem = target_problem(engine)
        if problem is not None:
            raise InvalidInput(problem[1])
    takes = [e for e in engines if e in _ONLY_VLLM_SGLANG]
    for option, value in (("--max-lora-rank", max_lora_rank), ("--lora-target-modules", lora_target_modules)):
        if value is not None and not takes:
            named = ", ".join(engines) or "no --target"
            raise InvalidInput(f"{option} applies to --target vllm or sglang; given {named}")
    modules = tuple(lora_target_modules) if lora_target_modules is not None else None
    return tuple(
        ServingTarget(e, max_lora_rank, modules) if e in _ONLY_VLLM_SGLANG else ServingTarget(e) for e in engines
    )


def serving_checks(
    target: ServingTarget,
    config: Mapping[str, Any],
    tensors: Sequence[TensorInfo],
    base: BaseFacts | None = None,
) -> tuple[Check, ...]:
    """One check per rule of ``target``'s engine, for the adapter of ``config`` and ``tensors``."""
    adapter = Adapter(config, tuple(classify(t) for t in tensors))
    facts = base or BaseFacts()
    return tuple(ENGINE_RULES[target.engine](target, adapter, facts))
