"""LoKr: a Kronecker product ``w1 (x) w2`` whose factors' shapes multiply to the base weight's.

``lokr_w1`` is ``[a, c]`` and ``lokr_w2`` ``[b, d]`` with ``a * b = out`` and ``c * d = in``; either
factor may be saved as a low-rank pair (``lokr_w1_a [a, r]``, ``lokr_w1_b [r, c]``, ``lokr_w2_a [b, r]``,
``lokr_w2_b [r, d]``; peft's ``lokr/layer.py`` ``LoKrLayer.create_adapter_parameters``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, product_is

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"LOKR"}),
    prefixes=("lokr_",),
    rules={
        "lokr_w1": ("a", "c"),
        "lokr_w2": ("b", "d"),
        "lokr_w1_a": ("a", "r"),
        "lokr_w1_b": ("r", "c"),
        "lokr_w2_a": ("b", "r"),
        "lokr_w2_b": ("r", "d"),
    },
    constraints=(product_is("a", "b", "out"), product_is("c", "d", "in")),
)
