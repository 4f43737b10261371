"""MiSS (formerly Bone): a shared block added across the base weight's rows.

``miss_block`` is ``[r, out]`` for the default ``init_weights`` (the ``bat`` variant has other shapes,
not checked; peft's ``miss/layer.py``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(peft_types=frozenset({"MISS", "BONE"}), prefixes=("miss_", "bone_"), rules={"miss_block": ("r", "out")})
