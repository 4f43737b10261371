"""LoHa: a Hadamard product of two low-rank products, ``(w1_a @ w1_b) * (w2_a @ w2_b)``.

On a linear base ``hada_w1_a``/``hada_w2_a`` are ``[out, r]`` and ``hada_w1_b``/``hada_w2_b`` ``[r, in]``
(peft's ``loha/layer.py`` ``LoHaLayer.create_adapter_parameters``); a Conv2d with
``use_effective_conv2d`` adds ``hada_t1``/``hada_t2`` (not shape-checked). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"LOHA"}),
    prefixes=("hada_",),
    rules={"hada_w1_a": ("out", "r"), "hada_w1_b": ("r", "in"), "hada_w2_a": ("out", "r"), "hada_w2_b": ("r", "in")},
)
