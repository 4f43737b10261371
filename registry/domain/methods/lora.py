"""LoRA (with rsLoRA, DoRA, rank/alpha patterns, biases, embeddings, Conv1D and Conv2d).

Tensors, with the base weight ``W`` of a Linear layer ``[out, in]`` (``[in, out]`` for a GPT-2
``Conv1D``, i.e. ``fan_in_fan_out``):

=============================  ===========================
``lora_A.weight``              ``[r, in]`` (Conv2d: ``[r, in, kh, kw]``)
``lora_B.weight``              ``[out, r]``
``lora_B.bias``                ``[out]`` (``lora_bias=True``)
``lora_magnitude_vector``      ``[out]`` (DoRA; ``[dim]`` on an embedding)
``lora_embedding_A``           ``[r, num_embeddings]``
``lora_embedding_B``           ``[dim, r]``
``base_layer.weight``          a full copy of an adapted embedding (``save_embedding_layers``)
=============================  ===========================

``r`` is the config's ``r`` or, for a module matched by ``rank_pattern``, that rank. The merge is
``W' = W + s * T(B @ A)`` with ``s = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA, both per module
through the patterns), DoRA rescaling the rows by ``magnitude / ||W + s * T(B @ A)||``, and the
bias ``b' = b + s * B.bias``: peft's ``LoraLayer.merge`` for each of these. With ``bias="lora_only"`` the
trained ``base_layer.bias`` replaces the base's bias (and ``B.bias`` is added to it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from registry.domain.adapterdir import pattern_value
from registry.domain.methods.base import BiasAdd, LoraUpdate, MergePlan, Replace, Shapes, shape_text, split_suffix
from registry.errors import InvalidInput

__all__ = ["METHOD", "SUFFIXES", "Lora", "scale"]

SUFFIXES = (
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

#: LoRA options the streaming merge cannot fold the way peft does.
_UNMERGED_OPTIONS = (
    "layer_replication", "target_parameters", "trainable_token_indices", "use_qalora", "use_bdlora",
    "velora_config", "kasa_config", "monteclora_config", "arrow_config", "alora_invocation_tokens",
)  # fmt: skip


def scale(config: Mapping[str, Any], module: str) -> float:
    """peft's ``scaling`` of one module: alpha/r (alpha/sqrt(r) with rsLoRA), r and alpha by pattern."""
    r = pattern_value(config.get("rank_pattern") or {}, module, config["r"])
    alpha = pattern_value(config.get("alpha_pattern") or {}, module, config["lora_alpha"])
    return float(alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r)


def _resized(module: str, shape: tuple[int, ...], w: tuple[int, ...]) -> str:
    if len(shape) == 2 and len(w) == 2 and shape[1] == w[1] and shape[0] != w[0]:
        return (
            f"{module}: the adapter saves a {shape_text(shape)} tensor, the base has {shape_text(w)}: a resized "
            f"vocabulary ({shape[0]} tokens vs the base's {w[0]}); resize the base's token embeddings to "
            f"{shape[0]} (model.resize_token_embeddings) before loading"
        )
    return f"{module}: the adapter saves a {shape_text(shape)} tensor, the base weight is {shape_text(w)}"


class Lora:
    peft_types = frozenset({"LORA"})

    def split(self, name: str) -> tuple[str, str] | None:
        return split_suffix(name, SUFFIXES)

    def check(
        self, shapes: Shapes, tensor: str, path: str, role: str, shape: tuple[int, ...], config: Mapping[str, Any]
    ) -> None:
        found = shapes.module(tensor, path)
        if found is None:
            return
        module, w = found
        if role.startswith("base_layer"):  # a full copy of an adapted embedding (save_embedding_layers)
            if role == "base_layer.weight" and tuple(shape) != tuple(w):
                shapes.failures.append(_resized(module, shape, w))
            else:
                shapes.fitted.add(module)
            return
        ok = (
            self._embedding(shapes, module, role, shape, w)
            if role.startswith("lora_embedding")
            else self._linear(shapes, module, role, shape, w)
        )
        if ok:
            shapes.fitted.add(module)

    @staticmethod
    def _embedding(shapes: Shapes, module: str, role: str, shape: tuple[int, ...], w: tuple[int, ...]) -> bool:
        if len(w) != 2 or len(shape) != 2:
            shapes.fail(
                module, f"adapter {role} {shape_text(shape)} needs a 2-D embedding, base weight is {shape_text(w)}"
            )
            return False
        num, dim = w
        if role == "lora_embedding_A":  # [r, num_embeddings]
            if shape[1] != num:
                shapes.fail(
                    module,
                    f"adapter lora_embedding_A expects num_embeddings {shape[1]}, base embedding is {shape_text(w)}",
                )
                return False
            rank = shape[0]
        else:  # lora_embedding_B: [dim, r]
            if shape[0] != dim:
                shapes.fail(
                    module,
                    f"adapter lora_embedding_B expects embedding dim {shape[0]}, base embedding is {shape_text(w)}",
                )
                return False
            rank = shape[1]
        r = shapes.rank(module)
        if r is not None and rank != r:
            shapes.fail(module, f"adapter {role} has rank {rank}, the config says r={r} for this module")
            return False
        return True

    @staticmethod
    def _linear(shapes: Shapes, module: str, role: str, shape: tuple[int, ...], w: tuple[int, ...]) -> bool:
        features = shapes.features(w)
        if features is None:
            shapes.fail(
                module, f"adapter {role} targets a base weight of shape {shape_text(w)}, which LoRA cannot adapt"
            )
            return False
        out_f, in_f = features
        if role == "lora_A.weight":  # [r, in] (Conv2d: [r, in, kh, kw])
            if len(shape) < 2 or shape[1] != in_f:
                got = shape[1] if len(shape) > 1 else 0
                hint = shapes.transposed_hint(got, w, True)
                shapes.fail(module, f"adapter lora_A expects in_features {got}, base weight is {shape_text(w)}{hint}")
                return False
            rank = shape[0]
        elif role == "lora_B.weight":  # [out, r]
            if len(shape) < 2 or shape[0] != out_f:
                got = shape[0] if shape else 0
                hint = shapes.transposed_hint(got, w, False)
                shapes.fail(module, f"adapter lora_B expects out_features {got}, base weight is {shape_text(w)}{hint}")
                return False
            rank = shape[1]
        else:  # lora_B.bias [out]; DoRA magnitude [out], or [dim] on an embedding
            want = w[1] if module in shapes.embedding_modules and len(w) == 2 else out_f
            what = "lora_B.bias" if role == "lora_B.bias" else "DoRA magnitude"
            if tuple(shape) != (want,):
                shapes.fail(
                    module,
                    f"adapter {what} {shape_text(shape)} expects {want} features, base weight is {shape_text(w)}",
                )
                return False
            return True
        r = shapes.rank(module)
        if r is not None and rank != r:
            shapes.fail(module, f"adapter {role.split('.')[0]} has rank {rank}, the config says r={r} for this module")
            return False
        return True

    def trainable(self, role: str, dtype: str) -> bool:
        return role != "base_layer.weight"  # the saved copy of an adapted embedding is frozen

    def merge_refusal(self, config: Mapping[str, Any], ref: str) -> str | None:
        for option in _UNMERGED_OPTIONS:
            if config.get(option):
                return f"{ref} uses {option}, which the streaming merge does not support; merge it with peft's merge_and_unload"
        return None

    def plan(self, plan: MergePlan, config: Mapping[str, Any], module: str, role: str, key: str) -> None:
        weight = f"{module}.weight"
        op = plan.ops.get(weight)
        if not isinstance(op, LoraUpdate):
            op = LoraUpdate(scale=scale(config, module))
            plan.ops[weight] = op
        if role == "lora_A.weight":
            op.a = key
        elif role == "lora_B.weight":
            op.b = key
        elif role == "lora_embedding_A":
            op.a, op.embedding = key, True
        elif role == "lora_embedding_B":
            op.b, op.embedding = key, True
        elif role.startswith("lora_magnitude_vector"):
            op.magnitude = key
        elif role == "base_layer.weight":
            op.base_layer = key
        elif role == "lora_B.bias":
            trained = plan.ops.get(f"{module}.bias")
            base_key = trained.key if isinstance(trained, Replace) else None
            plan.ops[f"{module}.bias"] = BiasAdd(key, op.scale, base_key)
        elif role == "base_layer.bias":  # bias="lora_only" (or "all"): the trained bias replaces the base's
            added = plan.ops.get(f"{module}.bias")
            plan.ops[f"{module}.bias"] = (
                BiasAdd(added.key, added.scale, key) if isinstance(added, BiasAdd) else Replace(key)
            )
        else:
            raise InvalidInput(f"adapter tensor {key} has no role the merge knows; nothing was written")

    def finish(self, plan: MergePlan, base: Mapping[str, tuple[int, ...]]) -> None:
        for weight, op in list(plan.ops.items()):
            if not isinstance(op, LoraUpdate) or (op.a is not None and op.b is not None):
                continue
            if op.base_layer is not None and op.a is None and op.b is None:
                plan.ops[weight] = Replace(op.base_layer)  # a saved embedding copy without LoRA weights
                continue
            raise InvalidInput(f"{weight}: the adapter has only one of the LoRA A/B matrices; it is incomplete")


METHOD = Lora()
