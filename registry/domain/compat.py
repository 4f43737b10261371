"""Static compatibility of an adapter with a base model, from tensor headers alone.

Pure functions: given the adapter's config and tensor shapes and the base's config and
tensor shapes, say for every adapter tensor which base weight it modifies and whether its
shape fits, whether every target module exists on both sides, and what could not be
checked. No weights are read; this runs in milliseconds for any base size.

Shapes, with the base weight ``W`` of a Linear layer ``[out, in]`` (``[in, out]`` for a
GPT-2 ``Conv1D``, i.e. ``fan_in_fan_out``):

=============================  ===========================
``lora_A.weight``              ``[r, in]``
``lora_B.weight``              ``[out, r]``
``lora_B.bias``                ``[out]``
``lora_magnitude_vector``      ``[out]`` (DoRA)
``lora_embedding_A``           ``[r, num_embeddings]``
``lora_embedding_B``           ``[dim, r]``
``ia3_l``                      ``[out, 1]``, or ``[1, in]`` for feed-forward modules
modules_to_save tensors        exactly the base tensor's shape
=============================  ===========================

``r`` is the config's ``r`` or, for a module matched by ``rank_pattern``, that rank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.domain.adapterdir import PeftFacts, TensorInfo, pattern_value, strip_peft_prefix, target_matches

__all__ = ["Check", "base_modules", "check_fingerprint", "find_module", "static_checks"]

_LORA_SUFFIXES = (
    "lora_A.weight",
    "lora_B.weight",
    "lora_B.bias",
    "lora_magnitude_vector.weight",
    "lora_magnitude_vector",
    "lora_embedding_A",
    "lora_embedding_B",
    "base_layer.weight",
    "base_layer.bias",
)
_PROMPT_TYPES = {"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING", "CPT"}
_EMBEDDING_KEYS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "embed_in.weight", "shared.weight")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
_MAX_LISTED = 20


@dataclass(frozen=True)
class Check:
    """The outcome of one check. ``passed`` is None when the check could not be made."""

    name: str
    passed: bool | None
    message: str
    details: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message, "details": list(self.details)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(name=d["name"], passed=d["passed"], message=d["message"], details=tuple(d.get("details") or ()))


def check_fingerprint(recorded: str | None, actual: str | None, allow_mismatch: bool) -> Check:
    """The base given now is the base recorded at push, by content."""
    name = "base-fingerprint"
    if recorded is None:
        return Check(name, None, "not checked: no base fingerprint was recorded at push (the base was not found then)")
    if actual is None:
        return Check(name, None, "not checked: the base given has no weight files to fingerprint")
    if recorded == actual:
        return Check(name, True, f"the base's weights match the fingerprint recorded at push ({actual[:19]}…)")
    if allow_mismatch:
        return Check(
            name,
            True,
            f"MISMATCH ALLOWED (--allow-base-mismatch): the base's fingerprint {actual[:19]}… differs from the "
            f"{recorded[:19]}… recorded at push",
        )
    return Check(
        name,
        False,
        f"the base's weights ({actual[:19]}…) are not the ones recorded at push ({recorded[:19]}…): this is a "
        "different base or a different revision; verify against the recorded base, or pass --allow-base-mismatch",
    )


def base_modules(base_tensors: Sequence[TensorInfo]) -> dict[str, tuple[int, ...]]:
    """Module name -> weight shape, for every module of the base that has a ``.weight``."""
    return {t.name[: -len(".weight")]: t.shape for t in base_tensors if t.name.endswith(".weight")}


def find_module(path: str, modules: Mapping[str, tuple[int, ...]]) -> str | None:
    """The base module an adapter module path names, allowing for a differing model prefix
    (an adapter trained on ``LlamaForCausalLM`` names ``model.layers...``; a base saved as
    ``LlamaModel`` names ``layers...``)."""
    if path in modules:
        return path
    rest = path.partition(".")[2]
    if rest and rest in modules:
        return rest
    prefixes = {m.split(".", 1)[0] for m in modules if "." in m}
    for prefix in sorted(prefixes):
        candidate = f"{prefix}.{path}"
        if candidate in modules:
            return candidate
    return None


def _split(name: str, suffixes: Sequence[str]) -> tuple[str, str] | None:
    for suffix in suffixes:
        if name.endswith("." + suffix):
            return name[: -len(suffix) - 1], suffix
    return None


def _shape(s: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in s) + "]"


def _resized(module: str, shape: Sequence[int], w: Sequence[int]) -> str:
    if len(shape) == 2 and len(w) == 2 and shape[1] == w[1] and shape[0] != w[0]:
        return (
            f"{module}: the adapter saves a {_shape(shape)} tensor, the base has {_shape(w)}: a resized "
            f"vocabulary ({shape[0]} tokens vs the base's {w[0]}); resize the base's token embeddings to "
            f"{shape[0]} (model.resize_token_embeddings) before loading"
        )
    return f"{module}: the adapter saves a {_shape(shape)} tensor, the base weight is {_shape(w)}"


def _owner(name: str, modules: Mapping[str, tuple[int, ...]]) -> str | None:
    """The base module a tensor of unknown role belongs to: its longest dotted prefix found in the base."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        found = find_module(".".join(parts[:i]), modules)
        if found is not None:
            return found
    return None


class _Shapes:
    """Checks each adapter tensor against the base weight it modifies and collects the findings."""

    def __init__(self, facts: PeftFacts, modules: Mapping[str, tuple[int, ...]], embedding_modules: set[str]) -> None:
        self.facts = facts
        self.modules = modules
        self.embedding_modules = embedding_modules
        self.failures: list[str] = []
        self.fitted: set[str] = set()
        self.count = 0

    def _module(self, tensor: str, path: str, what: str = "module") -> tuple[str, tuple[int, ...]] | None:
        self.count += 1
        module = find_module(path, self.modules)
        if module is None:
            self.failures.append(f"{tensor}: the base has no {what} {path!r}")
            return None
        return module, self.modules[module]

    def _rank(self, module: str) -> int | None:
        pattern = pattern_value(self.facts.rank_pattern, module)
        return int(pattern) if pattern is not None else self.facts.r

    def _fail(self, module: str, message: str) -> None:
        self.failures.append(f"{module}: {message}")

    def _features(self, w: tuple[int, ...]) -> tuple[int, int] | None:
        """(out_features, in_features) of a base weight, or None when LoRA cannot adapt it."""
        if len(w) == 4:  # Conv2d [out, in, kh, kw]
            return w[0], w[1]
        if len(w) == 2:
            return (w[1], w[0]) if self.facts.fan_in_fan_out else (w[0], w[1])
        return None

    def _hint(self, got: int, w: tuple[int, ...], want_in: bool) -> str:
        """Say so when a shape would fit the transposed weight (a wrong fan_in_fan_out)."""
        if len(w) != 2 or w[0] == w[1]:
            return ""
        other = self._features((w[1], w[0]))
        if other is not None and got == (other[1] if want_in else other[0]):
            return f" (it fits the transposed weight: fan_in_fan_out is {self.facts.fan_in_fan_out} in the config)"
        return ""

    def lora(self, tensor: str, path: str, kind: str, shape: tuple[int, ...]) -> None:
        found = self._module(tensor, path)
        if found is None:
            return
        module, w = found
        if kind.startswith("base_layer"):  # a full copy of an adapted embedding (save_embedding_layers)
            if kind == "base_layer.weight" and tuple(shape) != tuple(w):
                self.failures.append(_resized(module, shape, w))
            else:
                self.fitted.add(module)
            return
        ok = (
            self._embedding(module, kind, shape, w)
            if kind.startswith("lora_embedding")
            else self._linear(module, kind, shape, w)
        )
        if ok:
            self.fitted.add(module)

    def _embedding(self, module: str, kind: str, shape: tuple[int, ...], w: tuple[int, ...]) -> bool:
        if len(w) != 2 or len(shape) != 2:
            self._fail(module, f"adapter {kind} {_shape(shape)} needs a 2-D embedding, base weight is {_shape(w)}")
            return False
        num, dim = w
        if kind == "lora_embedding_A":  # [r, num_embeddings]
            if shape[1] != num:
                self._fail(
                    module, f"adapter lora_embedding_A expects num_embeddings {shape[1]}, base embedding is {_shape(w)}"
                )
                return False
            rank = shape[0]
        else:  # lora_embedding_B: [dim, r]
            if shape[0] != dim:
                self._fail(
                    module, f"adapter lora_embedding_B expects embedding dim {shape[0]}, base embedding is {_shape(w)}"
                )
                return False
            rank = shape[1]
        r = self._rank(module)
        if r is not None and rank != r:
            self._fail(module, f"adapter {kind} has rank {rank}, the config says r={r} for this module")
            return False
        return True

    def _linear(self, module: str, kind: str, shape: tuple[int, ...], w: tuple[int, ...]) -> bool:
        features = self._features(w)
        if features is None:
            self._fail(module, f"adapter {kind} targets a base weight of shape {_shape(w)}, which LoRA cannot adapt")
            return False
        out_f, in_f = features
        r = self._rank(module)
        if kind == "lora_A.weight":  # [r, in] (Conv2d: [r, in, kh, kw])
            if len(shape) < 2 or shape[1] != in_f:
                got = shape[1] if len(shape) > 1 else 0
                self._fail(
                    module,
                    f"adapter lora_A expects in_features {got}, base weight is {_shape(w)}{self._hint(got, w, True)}",
                )
                return False
            rank = shape[0]
        elif kind == "lora_B.weight":  # [out, r]
            if len(shape) < 2 or shape[0] != out_f:
                got = shape[0] if shape else 0
                self._fail(
                    module,
                    f"adapter lora_B expects out_features {got}, base weight is {_shape(w)}{self._hint(got, w, False)}",
                )
                return False
            rank = shape[1]
        else:  # lora_B.bias [out]; DoRA magnitude [out], or [dim] on an embedding
            want = w[1] if module in self.embedding_modules and len(w) == 2 else out_f
            what = "lora_B.bias" if kind == "lora_B.bias" else "DoRA magnitude"
            if tuple(shape) != (want,):
                self._fail(
                    module, f"adapter {what} {_shape(shape)} expects {want} features, base weight is {_shape(w)}"
                )
                return False
            return True
        if r is not None and rank != r:
            self._fail(module, f"adapter {kind.split('.')[0]} has rank {rank}, the config says r={r} for this module")
            return False
        return True

    def ia3(self, tensor: str, path: str, shape: tuple[int, ...], feedforward: bool) -> None:
        found = self._module(tensor, path)
        if found is None:
            return
        module, w = found
        features = self._features(w) if len(w) == 2 else None
        if features is None:
            self._fail(module, f"IA3 vector {_shape(shape)} targets a base weight of shape {_shape(w)}")
            return
        out_f, in_f = features
        want = (1, in_f) if feedforward else (out_f, 1)
        if tuple(shape) != want:
            role = "a feed-forward module: it scales the inputs" if feedforward else "it scales the outputs"
            self._fail(
                module, f"IA3 vector {_shape(shape)} should be {_shape(want)} ({role}) for base weight {_shape(w)}"
            )
            return
        self.fitted.add(module)

    def saved(self, tensor: str, path: str, leaf: str, shape: tuple[int, ...]) -> None:
        """A modules_to_save tensor: a full replacement, so it must have the base tensor's shape."""
        module = find_module(path, self.modules)
        if module is None and path.endswith(("lm_head", "embed_out")):
            module = _tied_embedding(self.modules)  # tied output embeddings are saved once, as the input embedding
        self.count += 1
        if module is None:
            self.failures.append(f"{tensor}: modules_to_save names {path!r}, which the base does not have")
            return
        w = self.modules[module]
        if leaf == "weight" and tuple(shape) != tuple(w):
            self.failures.append(_resized(path, shape, w))
            return
        self.fitted.add(module)

    def result(self, total: int) -> Check:
        if self.failures:
            listed = tuple(self.failures[:_MAX_LISTED])
            if len(self.failures) > _MAX_LISTED:
                listed += (f"... and {len(self.failures) - _MAX_LISTED} more",)
            return Check(
                "tensor-shapes",
                False,
                f"{len(self.failures)} of {total} adapter tensors do not fit the base; first: {self.failures[0]}",
                listed,
            )
        return Check("tensor-shapes", True, f"{self.count} adapter tensors fit {len(self.fitted)} base modules")


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


def _tied_embedding(modules: Mapping[str, tuple[int, ...]]) -> str | None:
    for module in modules:
        if any((module + ".weight").endswith(k) for k in _EMBEDDING_KEYS):
            return module
    return None


def _is_feedforward(module: str, feedforward: Any) -> bool:
    if isinstance(feedforward, str):
        return re.fullmatch(feedforward, module) is not None
    return any(target_matches(f, module) for f in feedforward or [])


def static_checks(
    facts: PeftFacts,
    config: Mapping[str, Any],
    adapter_tensors: Sequence[TensorInfo],
    base_tensors: Sequence[TensorInfo],
    base_config: Mapping[str, Any],
) -> tuple[list[Check], list[str]]:
    """All header-level checks; returns the checks and plain sentences saying what was not checked."""
    if facts.type in _PROMPT_TYPES:
        return _prompt_checks(facts, config, adapter_tensors, base_config)
    modules = base_modules(base_tensors)
    embedding_modules = {
        split[0]
        for t in adapter_tensors
        if (split := _split(strip_peft_prefix(t.name), ("lora_embedding_A", "lora_embedding_B")))
    }
    shapes = _Shapes(facts, modules, {m for p in embedding_modules if (m := find_module(p, modules))})
    saved = facts.modules_to_save or []
    other: list[TensorInfo] = []
    for t in adapter_tensors:
        name = strip_peft_prefix(t.name)
        path, _, leaf = name.rpartition(".")
        if facts.type == "LORA" and (split := _split(name, _LORA_SUFFIXES)):
            shapes.lora(t.name, split[0], split[1], t.shape)
        elif facts.type == "IA3" and (split := _split(name, ("ia3_l",))):
            shapes.ia3(t.name, split[0], t.shape, _is_feedforward(split[0], config.get("feedforward_modules")))
        elif leaf in ("weight", "bias") and any(target_matches(s, path) for s in saved):
            shapes.saved(t.name, path, leaf, t.shape)
        else:
            other.append(t)
    checks = [shapes.result(len(adapter_tensors))] if shapes.count else []
    unchecked: list[str] = []
    if other:
        orphans = [t.name for t in other if _owner(strip_peft_prefix(t.name), modules) is None]
        checks.append(
            Check(
                "tensor-modules",
                not orphans,
                f"{len(orphans)} adapter tensors belong to no module of the base; first: {orphans[0]}"
                if orphans
                else f"the {len(other)} {facts.type} tensors all belong to modules of the base",
                tuple(orphans[:_MAX_LISTED]),
            )
        )
        unchecked.append(
            f"the shapes of {len(other)} {facts.type} tensors (e.g. {other[0].name}) were not checked: "
            f"shape rules are known for LoRA and IA3 only; only that each tensor's module exists in the base was"
        )
    checks.append(_targets(facts, adapter_tensors, modules))
    adapted = _adapted(adapter_tensors)
    if facts.rank_pattern:
        checks.append(_pattern_keys("rank_pattern", facts.rank_pattern, adapted))
    if facts.alpha_pattern:
        checks.append(_pattern_keys("alpha_pattern", facts.alpha_pattern, adapted))
    return checks, unchecked


def _adapted(adapter_tensors: Sequence[TensorInfo]) -> set[str]:
    """Module paths the adapter holds tuner weights for."""
    return {
        split[0] for t in adapter_tensors if (split := _split(strip_peft_prefix(t.name), (*_LORA_SUFFIXES, "ia3_l")))
    }


def _pattern_keys(name: str, patterns: Mapping[str, Any], adapted: set[str]) -> Check:
    dead = [k for k in patterns if not any(pattern_value({k: True}, m) for m in adapted)]
    check = name.replace("_", "-")
    if dead:
        return Check(check, False, f"{name} keys {dead} match no adapted module, so they have no effect")
    return Check(check, True, f"every {name} key matches an adapted module")


def _targets(facts: PeftFacts, adapter_tensors: Sequence[TensorInfo], modules: Mapping[str, tuple[int, ...]]) -> Check:
    targets = facts.target_modules
    if targets is None:
        return Check("target-modules", None, "not checked: the config lists no target modules")
    regex = isinstance(targets, str)
    wanted = [targets] if isinstance(targets, str) else list(targets)
    adapter_modules = _adapted(adapter_tensors)
    problems = []
    for target in wanted:
        in_adapter = any(target_matches(target, m, regex=regex) for m in adapter_modules)
        in_base = any(target_matches(target, m, regex=regex) for m in modules) or any(
            target_matches(target, m.split(".", 1)[-1], regex=regex) for m in modules
        )
        if not in_adapter and not in_base:
            problems.append(f"target {target!r} matches no adapter tensor and no base module")
        elif not in_adapter:
            problems.append(
                f"target {target!r} matches base modules but no adapter tensor: the adapter holds no weights for it"
            )
        elif not in_base:
            problems.append(f"target {target!r} matches no module of the base")
    if problems:
        return Check("target-modules", False, problems[0], tuple(problems))
    return Check(
        "target-modules", True, f"all {len(wanted)} target module patterns match adapter tensors and base modules"
    )


def _prompt_checks(
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
