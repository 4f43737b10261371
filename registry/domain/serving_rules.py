"""The rules of each serving engine, one function per engine, one :class:`Check` per rule.

:mod:`registry.domain.serving` is the entry point (targets, profiles, :func:`~registry.domain.serving.serving_checks`)
and its docstring names the engine code every rule was read from; the per-rule comments and messages here cite
the file and function again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.domain.adapterdir import PEFT_PREFIX, TensorInfo
from registry.domain.methods.base import MAX_LISTED, Check

if TYPE_CHECKING:
    from registry.domain.serving import BaseFacts, ServingTarget

__all__ = [
    "ENGINE_NAMES",
    "ENGINE_RULES",
    "RULES_FROM",
    "SGLANG_TARGET_MODULES",
    "VLLM_DEFAULT_MAX_LORA_RANK",
    "VLLM_MAX_LORA_RANKS",
    "Adapter",
    "classify",
]

#: How each engine is named in sentences.
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "lorax": "LoRAX", "tgi": "TGI"}
#: The engine code each engine's rules were read from (recorded with every profile).
RULES_FROM = {
    "vllm": "vLLM 0.34.0",
    "sglang": "SGLang 0.5.23",
    "lorax": "LoRAX main a7394ba3",
    "tgi": "TGI main db931fcf (3.3.6-dev0)",
}
#: vllm/config/lora.py MaxLoRARanks: the values vLLM accepts for --max-lora-rank.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16
_VLLM_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")  # PEFTHelper._init_is_supported
_VLLM_HEADS = ("classifier", "score")  # PEFTHelper._validate_features, parse_fine_tuned_lora_name
#: The packed modules vLLM and SGLang fuse (vLLM: each model's packed_modules_mapping; these are the common ones).
_PACKED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
#: python/sglang/srt/utils/common.py SUPPORTED_LORA_TARGET_MODULES (the choices of --lora-target-modules).
SGLANG_TARGET_MODULES = (
    "q_proj", "k_proj", "v_proj", "o_proj", "q_a_proj", "kv_a_proj_with_mqa", "q_b_proj", "kv_b_proj", "wq_b",
    "wk", "weights_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj", "embed_tokens",
    "lm_head", "qkvr", "wo_ud",
)  # fmt: skip
#: python/sglang/srt/lora/utils.py get_normalized_target_modules' params_mapping.
_SGLANG_NORMALIZED = {
    "q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "gate_proj": "gate_up_proj",
    "up_proj": "gate_up_proj", "vocab_emb": "embed_tokens", "embeddings": "embed_tokens",
    "word_embeddings": "embed_tokens", "output": "lm_head", "unembed_tokens": "lm_head",
    "q_a_proj": "fused_qkv_a_proj_with_mqa", "kv_a_proj_with_mqa": "fused_qkv_a_proj_with_mqa",
    "wq_b": "indexer.wq_b", "wk": "indexer.wk", "weights_proj": "indexer.weights_proj",
}  # fmt: skip
_LLAMA_LIKE = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj")  # fmt: skip
#: LoRAX: model_type -> (the model's file, the module-path endings it loads LoRA weights into), from
#: ADAPTER_LAYERS and adapter_target_to_layer of server/lorax_server/models/<file>.
_LORAX_LAYERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "llama": ("flash_llama.py", (*_LLAMA_LIKE, "lm_head")),
    "mistral": ("flash_mistral.py", (*_LLAMA_LIKE, "lm_head")),
    "qwen2": ("flash_qwen2.py", (*_LLAMA_LIKE, "lm_head")),
    "granite": ("flash_granite.py", (*_LLAMA_LIKE, "lm_head")),
    "gemma": ("flash_gemma.py", _LLAMA_LIKE),
    "gemma2": ("flash_gemma2.py", _LLAMA_LIKE),
    "solar": ("flash_solar.py", _LLAMA_LIKE),
    "cohere": ("flash_cohere.py", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                   "mlp.gate_up_proj", "mlp.down_proj", "lm_head")),
    "mixtral": ("flash_mixtral.py", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")),
    "phi": ("flash_phi.py", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense",
                             "mlp.fc1", "mlp.fc2", "lm_head")),
    "phi3": ("flash_phi3.py", ("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj")),
    "qwen": ("flash_qwen.py", ("attn.c_attn", "attn.c_proj", "mlp.w1", "mlp.w2", "mlp.c_proj", "lm_head")),
    "gpt2": ("flash_gpt2.py", ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")),
    "dbrx": ("flash_dbrx.py", ("norm_attn_norm.attn.q_proj", "norm_attn_norm.attn.out_proj", "lm_head")),
    "bloom": ("bloom.py", ("self_attention.query_key_value", "self_attention.dense", "mlp.dense_h_to_4h",
                           "mlp.dense_4h_to_h")),
    "xlm-roberta": ("flash_roberta.py", ("attention.self.query", "attention.self.key", "attention.self.value")),
}  # fmt: skip
_LORAX_LAYERS["phi-msft"] = _LORAX_LAYERS["phi"]
#: LoRAX models whose supports_adapter_loading is False (models/model.py's default).
_LORAX_NO_ADAPTERS = ("bert", "distilbert", "gpt_bigcode", "mpt", "gpt_neox", "falcon", "RefinedWeb",
                      "RefinedWebModel", "opt", "t5")  # fmt: skip
_LORAX_UNCHECKED = ("llava", "llava_next", "mllama")  # vision-language models: their own lookup, not read here
#: TGI utils/adapter.py get_attn_weights / get_mlp_weights, limited to models/__init__.py's adapter_layers.
_TGI_MODULE = re.compile(
    r"^model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|qkv_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj|c_fc|c_proj))$"
)
_EMBEDDING_LEAVES = ("embed_tokens", "lm_head", "wte", "word_embeddings", "embed_in", "embed_out", "tok_embeddings")


# -- the adapter as the rules see it -----------------------------------------------------------------


@dataclass(frozen=True)
class _Tensor:
    name: str
    kind: str  # lora, lora-embedding, lora-bias, dora, tokens, base-copy, full
    module: str  # the module path, without peft's prefix
    shape: tuple[int, ...]

    @property
    def leaf(self) -> str:
        return self.module.rsplit(".", 1)[-1]


def classify(t: TensorInfo) -> _Tensor:
    name = t.name[len(PEFT_PREFIX) :] if t.name.startswith(PEFT_PREFIX) else t.name
    parts = name.split(".")
    last, before = parts[-1], parts[-2] if len(parts) > 1 else ""
    if last == "weight" and before in ("lora_A", "lora_B"):
        return _Tensor(t.name, "lora", ".".join(parts[:-2]), t.shape)
    if last in ("lora_embedding_A", "lora_embedding_B"):
        return _Tensor(t.name, "lora-embedding", ".".join(parts[:-1]), t.shape)
    if last == "bias" and before == "lora_B":
        return _Tensor(t.name, "lora-bias", ".".join(parts[:-2]), t.shape)
    if "lora_magnitude_vector" in parts:
        return _Tensor(t.name, "dora", ".".join(parts[: parts.index("lora_magnitude_vector")]), t.shape)
    if last == "trainable_tokens_delta":
        module = parts[:-2] if before == "token_adapter" else parts[:-1]
        return _Tensor(t.name, "tokens", ".".join(module), t.shape)
    if before == "base_layer":
        return _Tensor(t.name, "base-copy", ".".join(parts[:-2]), t.shape)
    return _Tensor(t.name, "full", ".".join(parts[:-1]), t.shape)


@dataclass(frozen=True)
class Adapter:
    config: Mapping[str, Any]
    tensors: tuple[_Tensor, ...]

    @property
    def peft_type(self) -> str:
        return str(self.config.get("peft_type") or "").upper()

    @property
    def r(self) -> int | None:
        r = self.config.get("r")
        return r if isinstance(r, int) and not isinstance(r, bool) else None

    def patterns(self, key: str) -> dict[str, Any]:
        value = self.config.get(key)
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def max_rank(self) -> int | None:
        """vLLM's ``max([r, *rank_pattern.values()])``."""
        ranks = [v for v in self.patterns("rank_pattern").values() if isinstance(v, int) and not isinstance(v, bool)]
        if self.r is not None:
            ranks.append(self.r)
        return max(ranks) if ranks else None

    @property
    def modules_to_save(self) -> list[str]:
        value = self.config.get("modules_to_save")
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def of(self, *kinds: str) -> list[_Tensor]:
        return [t for t in self.tensors if t.kind in kinds]

    def lora_modules(self) -> list[str]:
        return sorted({t.module for t in self.of("lora", "lora-embedding")})


def _listed(modules: Sequence[str]) -> str:
    """Module paths said once per layer pattern: ``model.layers.N.mlp.down_proj (2 layers)``."""
    patterns: dict[str, int] = {}
    for m in modules:
        key = re.sub(r"\.\d+(?=\.|$)", ".N", m)
        patterns[key] = patterns.get(key, 0) + 1
    said = [p + (f" ({n} layers)" if n > 1 and ".N" in p else "") for p, n in patterns.items()]
    shown = ", ".join(said[:MAX_LISTED])
    return shown + (f" and {len(said) - MAX_LISTED} more" if len(said) > MAX_LISTED else "")


def _check(name: str, problem: str | None, ok: str, more: Sequence[str] = ()) -> Check:
    """A failed check (``problem``, its details the items it names) or a passed one (``ok``)."""
    if problem is None:
        return Check(name, True, ok)
    return Check(name, False, problem, (problem, *more[:MAX_LISTED]))


def _added_tokens(a: Adapter, base: BaseFacts) -> list[str]:
    """Why the adapter adds or changes token rows of the vocabulary (empty: it does not)."""
    reasons = []
    indices = a.config.get("trainable_token_indices")
    if indices:
        reasons.append(f"trainable_token_indices {indices!r} (peft's TrainableTokens)")
    reasons += [f"{t.module} holds a trainable-tokens delta {list(t.shape)}" for t in a.of("tokens")]
    for t in a.of("full", "base-copy", "lora-embedding"):
        if t.kind == "lora-embedding":
            wide = t.shape[1] if t.name.endswith("lora_embedding_A") and len(t.shape) == 2 else None
            if base.vocab_size and wide is not None and wide != base.vocab_size:
                reasons.append(f"{t.module}'s embedding LoRA spans {wide} tokens, the base {base.vocab_size}")
            continue
        if t.leaf not in _EMBEDDING_LEAVES or len(t.shape) != 2 or not t.name.endswith("weight"):
            continue
        if base.vocab_size is not None:
            if t.shape[0] != base.vocab_size:
                reasons.append(
                    f"{t.module} has {t.shape[0]} token rows where the base's vocabulary has {base.vocab_size}"
                )
        elif t.kind == "full" and t.leaf not in a.modules_to_save:
            reasons.append(f"{t.module} is saved whole {list(t.shape)}, as peft does when the vocabulary was resized")
    return reasons


def _rank_pattern_problem(a: Adapter) -> str | None:
    ranks = {k: v for k, v in a.patterns("rank_pattern").items() if v != a.r}
    alphas = {k: v for k, v in a.patterns("alpha_pattern").items() if v != a.config.get("lora_alpha")}
    if not ranks and not alphas:
        return None
    what = "; ".join(
        p for p in (f"rank_pattern {ranks}" if ranks else "", f"alpha_pattern {alphas}" if alphas else "") if p
    )
    return what


# -- vLLM ----------------------------------------------------------------------------------------------

_MERGE = "or merge it into the base (adapters merge) and serve the merged model"


def _peft_type(a: Adapter, engine: str, where: str, required: Sequence[str]) -> Check:
    name = ENGINE_NAMES[engine]
    if a.peft_type != "LORA":
        return _check(
            f"{engine}-peft-type",
            f"{name} serves LoRA adapters only and this is {a.peft_type or 'no PEFT type'} ({where}): {_MERGE[3:]}",
            "",
        )
    missing = [k for k in required if k not in a.config]
    return _check(
        f"{engine}-peft-type",
        f"adapter_config.json lacks {', '.join(missing)}, which {name} requires ({where}); re-save it with peft"
        if missing
        else None,
        f"a LoRA adapter, the PEFT type {name} serves",
    )


def _vllm(target: ServingTarget, a: Adapter, base: BaseFacts) -> list[Check]:
    helper = "vllm/lora/peft_helper.py PEFTHelper"
    checks = [
        _peft_type(a, "vllm", f"{helper}.from_dict", ("r", "lora_alpha", "target_modules")),
        _vllm_rank(target, a),
    ]
    dora = a.config.get("use_dora") is True or bool(a.of("dora"))
    checks.append(_check(
        "vllm-dora",
        f"a DoRA adapter (use_dora): vLLM refuses it ('vLLM does not yet support DoRA.', {helper}._validate_features); "
        f"retrain without DoRA, {_MERGE}" if dora else None,
        "not a DoRA adapter",
    ))  # fmt: skip
    bias = a.config.get("bias", "none")
    checks.append(_check(
        "vllm-bias",
        f"bias is {bias!r}: vLLM refuses adapters that train biases ('Adapter bias is not supported.', "
        f"{helper}.validate_legal); retrain with bias=\"none\", {_MERGE}" if bias not in (None, "none") else None,
        'bias is "none"',
    ))  # fmt: skip
    lora_bias = a.config.get("lora_bias") is True or bool(a.of("lora-bias"))
    checks.append(_check(
        "vllm-lora-bias",
        f"lora_bias is set (a bias on lora_B): vLLM refuses it ('vLLM does not support LoRA bias (lora_bias).', "
        f"{helper}._validate_features); retrain with lora_bias=False, {_MERGE}" if lora_bias else None,
        "no LoRA bias (lora_bias)",
    ))  # fmt: skip
    checks += [_vllm_modules_to_save(a), _vllm_added_tokens(a, base), _vllm_init(a)]
    replication = a.config.get("layer_replication")
    checks.append(_check(
        "vllm-layer-replication",
        f"layer_replication {replication!r} stacks copies of base layers that vLLM's model does not have; vLLM "
        f"refuses it ('vLLM does not support layer_replication.', {helper}._validate_features): serve a model "
        "with the layers replicated and the adapter merged (adapters merge) instead" if replication else None,
        "no layer_replication",
    ))  # fmt: skip
    variants = [n for k, n in (("alora_invocation_tokens", "Activated LoRA (alora_invocation_tokens)"),
                               ("use_bdlora", "BD-LoRA (use_bdlora)"), ("use_qalora", "QALoRA (use_qalora)"))
                if a.config.get(k)]  # fmt: skip
    checks.append(_check(
        "vllm-variants",
        f"a {' and '.join(variants)} adapter: vLLM refuses these LoRA variants ({helper}._validate_features); "
        f"retrain as plain LoRA, {_MERGE}" if variants else None,
        "not an Activated LoRA, BD-LoRA or QALoRA adapter",
    ))  # fmt: skip
    checks.append(_vllm_tensors(a))
    if target.lora_target_modules is not None:
        checks.append(_vllm_target_modules(target.lora_target_modules, a))
    return checks


def _vllm_rank(target: ServingTarget, a: Adapter) -> Check:
    rank, limit = a.max_rank, target.rank_limit or VLLM_DEFAULT_MAX_LORA_RANK
    where = "vllm/lora/peft_helper.py PEFTHelper.validate_legal"
    if rank is None:
        return Check("vllm-rank", None, "not checked: adapter_config.json has no rank r")
    if rank <= limit:
        return Check(
            "vllm-rank", True, f"rank {rank} (largest of r and rank_pattern) is within --max-lora-rank {limit}; vLLM "
            "pads smaller ranks"
        )  # fmt: skip
    fits = [v for v in VLLM_MAX_LORA_RANKS if v >= rank]
    way = (
        f"start vLLM with --max-lora-rank {fits[0]}"
        if fits
        else f"no --max-lora-rank vLLM accepts is that large (at most {VLLM_MAX_LORA_RANKS[-1]}): retrain with a smaller r"
    )
    return _check(
        "vllm-rank",
        f"rank {rank} (largest of r and rank_pattern) is above --max-lora-rank {limit}, so vLLM refuses the adapter "
        f"('LoRA rank {rank} is greater than max_lora_rank {limit}.', {where}): {way}",
        "",
    )


def _vllm_modules_to_save(a: Adapter) -> Check:
    saved = a.modules_to_save
    unsupported = [m for m in saved if m not in _VLLM_HEADS]
    heads = sorted({t.module for t in a.of("full") if t.leaf in _VLLM_HEADS})
    where = "vllm/lora/peft_helper.py PEFTHelper._validate_features"
    if unsupported:
        problem = (
            f"modules_to_save is {saved}: vLLM accepts only a classifier or score head there and refuses the adapter "
            f"({where}); retrain without saving {', '.join(unsupported)} (or train them as LoRA targets), {_MERGE}"
        )
    elif len(heads) > 1:
        problem = (
            f"the adapter saves {len(heads)} classification heads ({', '.join(heads)}); vLLM loads one "
            "(vllm/lora/lora_model.py LoRAModel.from_lora_tensors): keep one head"
        )
    else:
        problem = None
    ok = f"modules_to_save is {saved} (a classification head vLLM loads)" if saved else "no modules_to_save"
    return _check("vllm-modules-to-save", problem, ok)


def _vllm_added_tokens(a: Adapter, base: BaseFacts) -> Check:
    reasons = _added_tokens(a, base)
    problem = (
        f"the adapter adds or changes tokens ({reasons[0]}): vLLM serves no added vocabulary (its extra-vocabulary "
        "support was removed; vllm/lora/utils.py parse_fine_tuned_lora_name refuses token and full embedding "
        "weights and is_base_embedding_weights skips embed_tokens/lm_head base_layer copies); serve a merged model "
        "with the resized vocabulary (adapters merge) instead"
        if reasons
        else None
    )
    ok = "no added tokens: the vocabulary is the base's" + ("" if base.vocab_size else " (no base vocab_size read)")
    return _check("vllm-added-tokens", problem, ok, reasons)


def _vllm_init(a: Adapter) -> Check:
    init = a.config.get("init_lora_weights", True)
    supported = not isinstance(init, str) or init.lower() in _VLLM_INITS
    return _check(
        "vllm-init",
        None
        if supported
        else f"init_lora_weights is {init!r}: PiSSA, OLoRA, CorDA and LoftQ change the base weights when peft loads "
        "the adapter, so vLLM refuses it (vllm/lora/peft_helper.py PEFTHelper._init_is_supported); convert it to a "
        "plain LoRA with peft's save_pretrained(..., path_initial_model_for_weight_conversion=...), or set "
        "init_lora_weights to true if the served base already holds the modified weights",
        f"init_lora_weights {init!r} leaves the base weights as they are",
    )


def _vllm_reads(t: _Tensor) -> bool:
    """vllm/lora/utils.py parse_fine_tuned_lora_name accepts the tensor (or is_base_embedding_weights skips it)."""
    if t.kind == "base-copy" and t.leaf in ("embed_tokens", "lm_head") and t.name.endswith(".weight"):
        return True
    if t.kind in ("lora", "lora-embedding"):
        return True
    return t.kind == "full" and t.leaf in _VLLM_HEADS and t.name.rsplit(".", 1)[-1] in ("weight", "bias")


def _vllm_tensors(a: Adapter) -> Check:
    refused = [t.name for t in a.tensors if not _vllm_reads(t)]
    return _check(
        "vllm-tensors",
        f"{len(refused)} tensor(s) are not weights vLLM reads (first: {refused[0]}); it refuses the adapter with "
        "'... is unsupported LoRA weight' (vllm/lora/utils.py parse_fine_tuned_lora_name): save only LoRA A/B "
        f"weights (no DoRA, biases, trainable tokens or saved modules other than a classifier/score head), {_MERGE}"
        if refused
        else None,
        f"each of the {len(a.tensors)} tensors is a weight vLLM reads (lora_A/lora_B, an embedding LoRA or a "
        "classification head)",
        refused,
    )


def _packed_match(leaf: str, full: str, wanted: set[str]) -> bool:
    """vllm/lora/utils.py is_in_target_modules: a suffix or full name listed, or a packed parent/part of it."""
    if leaf in wanted or full in wanted:
        return True
    return any(leaf in parts and parent in wanted for parent, parts in _PACKED.items()) or any(
        part in wanted for part in _PACKED.get(leaf, ())
    )


def _vllm_target_modules(allowed: Sequence[str], a: Adapter) -> Check:
    wanted = set(allowed)
    outside = [m for m in a.lora_modules() if not _packed_match(m.rsplit(".", 1)[-1], m, wanted)]
    return _check(
        "vllm-target-modules",
        f"vLLM started with --lora-target-modules {' '.join(allowed)} wraps only those modules, so the LoRA weights "
        f"of {_listed(outside)} are loaded but never applied (vllm/lora/model_manager.py, is_in_target_modules in "
        "vllm/lora/utils.py): add their names to --lora-target-modules"
        if outside
        else None,
        f"every adapted module is within --lora-target-modules {' '.join(allowed)}",
        outside,
    )


# -- SGLang --------------------------------------------------------------------------------------------


def _sglang_normalized(names: Sequence[str]) -> set[str]:
    return {_SGLANG_NORMALIZED.get(n.rsplit(".", 1)[-1], n.rsplit(".", 1)[-1]) for n in names}


def _sglang(target: ServingTarget, a: Adapter, base: BaseFacts) -> list[Check]:
    manager = "python/sglang/srt/lora/lora_manager.py LoRAManager"
    checks = [_peft_type(a, "sglang", "python/sglang/srt/lora/lora_config.py LoRAConfig",
                         ("target_modules", "r", "lora_alpha"))]  # fmt: skip
    r, limit = a.r, target.max_lora_rank
    if r is None:
        checks.append(Check("sglang-rank", None, "not checked: adapter_config.json has no rank r"))
    elif limit is None:
        checks.append(Check(
            "sglang-rank", True, f"rank {r}; without --max-lora-rank SGLang sizes its LoRA pool from the adapters in "
            "--lora-paths (one loaded later must fit that rank)"
        ))  # fmt: skip
    else:
        checks.append(_check(
            "sglang-rank",
            f"rank {r} is above --max-lora-rank {limit}, so SGLang refuses the adapter (memory pool "
            f"LoRAMemoryPool.can_support in python/sglang/srt/lora/mem_pool.py): start SGLang with --max-lora-rank {r}"
            if r > limit else None,
            f"rank {r} is within --max-lora-rank {limit}",
        ))  # fmt: skip
    pattern = _rank_pattern_problem(a)
    checks.append(_check(
        "sglang-rank-pattern",
        f"{pattern}: SGLang reads only r and lora_alpha (python/sglang/srt/lora/lora_config.py), so those modules "
        "are served with the wrong rank or scale; retrain without rank/alpha patterns, " + _MERGE if pattern else None,
        "no rank_pattern or alpha_pattern that differs from r and lora_alpha",
    ))  # fmt: skip
    dora = a.config.get("use_dora") is True or bool(a.of("dora"))
    checks.append(_check(
        "sglang-dora",
        f"a DoRA adapter (use_dora): SGLang refuses it (\"LoRA serving currently doesn't support DoRA adapters\", "
        f"{manager}.validate_new_adapter); retrain without DoRA, {_MERGE}" if dora else None,
        "not a DoRA adapter",
    ))  # fmt: skip
    reasons = _added_tokens(a, base)
    checks.append(_check(
        "sglang-added-tokens",
        f"the adapter adds or changes tokens ({reasons[0]}): SGLang refuses adapters that add tokens to the "
        f"vocabulary ({manager}.validate_new_adapter) and loads embed_tokens/lm_head weights only as LoRA targets "
        "(python/sglang/srt/lora/lora.py LoRAAdapter._process_weight); serve a merged model (adapters merge) instead"
        if reasons else None,
        "no added tokens in the config or tensors (an added_tokens.json beside the adapter is not read here)",
        reasons,
    ))  # fmt: skip
    checks.append(_sglang_targets(target, a))
    saved = a.modules_to_save
    checks.append(_check(
        "sglang-modules-to-save",
        f"modules_to_save is {saved}: SGLang loads only the LoRA weights of target modules (and embed_tokens/lm_head "
        "when they are targets), so the trained copies of those modules are not served "
        f"(python/sglang/srt/lora/lora.py LoRAAdapter._process_weight); train them as LoRA targets, {_MERGE}"
        if saved else None,
        "no modules_to_save",
    ))  # fmt: skip
    return checks


def _sglang_targets(target: ServingTarget, a: Adapter) -> Check:
    targets = a.config.get("target_modules")
    where = "python/sglang/srt/lora/lora_manager.py LoRAManager.init_lora_shapes"
    if isinstance(targets, str):
        if targets in ("all", "all-linear"):
            return Check("sglang-target-modules", True, f"target_modules {targets!r}: SGLang resolves it on the base")
        return _check(
            "sglang-target-modules",
            f"target_modules is the regular expression {targets!r}: SGLang refuses it ('SGLang does not recognize "
            f"target_modules=...', {where}); re-save the adapter with a list of module names",
            "",
        )
    names = [str(t) for t in targets] if isinstance(targets, list) else a.lora_modules()
    adapted = _sglang_normalized(names)
    supported = _sglang_normalized(SGLANG_TARGET_MODULES)
    unsupported = sorted(adapted - supported)
    if unsupported:
        return _check(
            "sglang-target-modules",
            f"target modules {', '.join(unsupported)} are not among the modules SGLang's LoRA serves "
            "(SUPPORTED_LORA_TARGET_MODULES in python/sglang/srt/utils/common.py, the choices of "
            "--lora-target-modules): retrain targeting modules it serves (q_proj, k_proj, v_proj, o_proj, gate_proj, "
            f"up_proj, down_proj, embed_tokens, lm_head, ...), {_MERGE}",
            "",
            unsupported,
        )
    given = target.lora_target_modules
    if given is None or "all" in given:
        how = "within --lora-target-modules all" if given else "inferred by SGLang from the adapters"
        return Check("sglang-target-modules", True, f"target modules {', '.join(sorted(adapted))} ({how})")
    outside = sorted(adapted - _sglang_normalized(given))
    return _check(
        "sglang-target-modules",
        f"target modules {', '.join(outside)} are not in --lora-target-modules {' '.join(given)}, so SGLang refuses "
        f"the adapter ({where}): start it with --lora-target-modules {' '.join(sorted(_sglang_normalized(given) | adapted))} "
        "(or all)" if outside else None,
        f"every target module is within --lora-target-modules {' '.join(given)}",
        outside,
    )  # fmt: skip


# -- LoRAX and TGI: the same loader (TGI's adapters/lora.py comes from LoRAX) ---------------------------


def _punica_common(engine: str, a: Adapter, base: BaseFacts, where: str) -> list[Check]:
    """The rules LoRAX and TGI share: only lora_A/lora_B weights are read, scaled by lora_alpha / r."""
    name = ENGINE_NAMES[engine]
    dora = a.config.get("use_dora") is True or bool(a.of("dora"))
    checks = [_check(
        f"{engine}-dora",
        f"a DoRA adapter (use_dora): {name} reads only lora_A and lora_B ({where} LoraConfig.load and "
        "map_weights_for_model) and serves it as plain LoRA without the magnitudes, so its outputs differ from "
        f"peft's: {_MERGE[3:]}" if dora else None,
        "not a DoRA adapter",
    )]  # fmt: skip
    extra = [t for t in a.tensors if t.kind in ("dora", "lora-bias", "tokens", "full", "lora-embedding")]
    extra += [t for t in a.of("base-copy") if t.name.endswith(".bias")]
    checks.append(_check(
        f"{engine}-extra-weights",
        f"{name} loads only <module>.lora_A.weight and lora_B.weight ({where} LoraConfig.map_weights_for_model) and "
        f"drops the other {len(extra)} tensor(s), logging 'unused adapter weights' (first: {extra[0].name}): "
        "DoRA magnitudes, biases, saved modules, embedding LoRA and token weights are not served; retrain without them, " + _MERGE
        if extra else None,
        f"only lora_A/lora_B weights, all of which {name} reads",
        [t.name for t in extra],
    ))  # fmt: skip
    reasons = _added_tokens(a, base)
    checks.append(_check(
        f"{engine}-added-tokens",
        f"the adapter adds or changes tokens ({reasons[0]}), and {name} loads no embedding weights from an adapter "
        f"(only lora_A/lora_B, {where} LoraConfig.map_weights_for_model): the new tokens are not served; serve a "
        "merged model with the resized vocabulary (adapters merge) instead" if reasons else None,
        "no added tokens: the vocabulary is the base's" + ("" if base.vocab_size else " (no base vocab_size read)"),
        reasons,
    ))  # fmt: skip
    pattern = _rank_pattern_problem(a)
    checks.append(_check(
        f"{engine}-rank-pattern",
        f"{pattern}: {name} scales every module by lora_alpha / r ({where} LoraConfig.load reads only r and "
        "lora_alpha), so those modules are served with the wrong scale; retrain without rank/alpha patterns, " + _MERGE
        if pattern else None,
        "no rank_pattern or alpha_pattern that differs from r and lora_alpha",
    ))  # fmt: skip
    return checks


def _lorax(target: ServingTarget, a: Adapter, base: BaseFacts) -> list[Check]:
    where = "server/lorax_server/adapters/lora.py"
    checks = [_peft_type(a, "lorax", f"{where} LoraConfig.load; adapters/__init__.py load_adapter_config", ())]
    model_type = target.model_type or base.model_type
    checks += _lorax_modules(model_type, a)
    return checks + _punica_common("lorax", a, base, where)


def _lorax_modules(model_type: str | None, a: Adapter) -> list[Check]:
    if model_type is None:
        return [Check(
            "lorax-target-modules", None, "not checked: the base's model_type is unknown, and LoRAX's adapter "
            "layers depend on it (give a base with its config.json, or model_type in the policy's lorax target)"
        )]  # fmt: skip
    if model_type in _LORAX_UNCHECKED:
        return [
            Check("lorax-target-modules", None, f"not checked: LoRAX's {model_type} model maps adapters its own way")
        ]
    if model_type in _LORAX_NO_ADAPTERS:
        return [_check(
            "lorax-model",
            f"LoRAX serves {model_type} models without adapters ('This model does not support adapter loading.', "
            f"server/lorax_server/models/model.py Model.load_adapter): {_MERGE[3:]}",
            "",
        )]  # fmt: skip
    if model_type not in _LORAX_LAYERS:
        return [_check(
            "lorax-model",
            f"LoRAX has no model for model_type {model_type!r} ('Unsupported model type', "
            f"server/lorax_server/models/__init__.py get_model): serve it with another engine",
            "",
        )]  # fmt: skip
    source, endings = _LORAX_LAYERS[model_type]
    ignored = [m for m in a.lora_modules() if not any(m == e or m.endswith("." + e) for e in endings)]
    return [
        Check("lorax-model", True, f"LoRAX loads adapters into {model_type} models (server/lorax_server/models/{source})"),
        _check(
            "lorax-target-modules",
            f"LoRAX silently ignores the LoRA weights of {_listed(ignored)}: on a {model_type} base it loads adapters "
            f"only into {', '.join(endings)} (ADAPTER_LAYERS, adapter_target_to_layer in server/lorax_server/models/"
            f"{source}) and drops the rest with a log line 'unused adapter weights' (models/model.py "
            "Model.load_adapter), so the served model differs from peft's; retrain targeting only those modules, "
            + _MERGE if ignored else None,
            f"every adapted module is one LoRAX loads on a {model_type} base ({', '.join(endings)})",
            ignored,
        ),
    ]  # fmt: skip


def _tgi(target: ServingTarget, a: Adapter, base: BaseFacts) -> list[Check]:
    where = "server/text_generation_server/adapters/lora.py"
    checks = [_peft_type(a, "tgi", f"{where} LoraConfig.load", ())]
    ignored = [m for m in a.lora_modules() if not _TGI_MODULE.match(m)]
    checks.append(_check(
        "tgi-target-modules",
        f"TGI silently ignores the LoRA weights of {_listed(ignored)}: it loads adapters only into "
        "model.layers.N.self_attn.{q,k,v,qkv,o}_proj and model.layers.N.mlp.{gate,up,down}_proj/c_fc/c_proj "
        "(server/text_generation_server/utils/adapter.py build_layer_weight_lookup; models/__init__.py "
        "get_model_with_lora_adapters logs the rest as 'unused adapter weights'), so the served model differs from "
        "peft's; retrain targeting only those modules, " + _MERGE if ignored else None,
        "every adapted module is an attention or MLP projection TGI loads",
        ignored,
    ))  # fmt: skip
    return checks + _punica_common("tgi", a, base, where)


ENGINE_RULES = {"vllm": _vllm, "sglang": _sglang, "lorax": _lorax, "tgi": _tgi}
