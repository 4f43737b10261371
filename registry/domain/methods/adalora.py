"""AdaLoRA: LoRA whose rank is pruned during training by an SVD-like triplet ``P diag(E) Q``.

``lora_A`` is ``[k, in]``, ``lora_B`` ``[out, k]`` and ``lora_E`` ``[k, 1]``, with ``k`` the module's
(pruned) rank, the same in all three (peft's ``adalora/layer.py`` ``SVDLayer.update_layer``). peft's
``SVDLayer.merge`` folds ``B @ (A * E) * scaling / ranknum`` in; the streaming merge calls it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"ADALORA"}),
    prefixes=("lora_",),
    rules={"lora_A": ("k", "in"), "lora_B": ("out", "k"), "lora_E": ("k", 1)},
)
