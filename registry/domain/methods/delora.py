"""DeLoRA: a LoRA update normalised per rank and bounded by a learned ``lambda``.

``delora_A`` is ``[r, in]``, ``delora_B`` ``[out, r]``, ``delora_lambda`` ``[1]``, and ``delora_w_norm``
``[in]``, the base's column norms kept as a buffer (peft's ``delora/layer.py``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"DELORA"}),
    prefixes=("delora_",),
    rules={"delora_A": ("r", "in"), "delora_B": ("out", "r"), "delora_lambda": (1,), "delora_w_norm": ("in",)},
    frozen=("delora_w_norm",),
)
