"""C3A: block-circulant convolution kernels.

``c3a_kernel`` is ``[out / b, in / b, b]`` with ``b`` the config's ``block_size`` (peft's ``c3a/layer.py``).
peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, divided, from_config

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"C3A"}),
    prefixes=("c3a_",),
    rules={"c3a_kernel": (divided("out", "block_size"), divided("in", "block_size"), from_config("block_size"))},
)
