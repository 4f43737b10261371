"""BOFT: OFT with butterfly-factorised orthogonal blocks.

``boft_R`` is ``[factors, n, b, b]`` with ``n * b = in`` and ``boft_s`` ``[out, 1]``, a learned scale of
the outputs (peft's ``boft/layer.py`` ``BOFTLayer.update_layer``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, product_is

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"BOFT"}),
    prefixes=("boft_",),
    rules={"boft_R": ("f", "n", "b", "b"), "boft_s": ("out", 1)},
    constraints=(product_is("n", "b", "in"),),
)
