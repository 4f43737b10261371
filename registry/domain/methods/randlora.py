"""RandLoRA: full-rank updates from shared random low-rank bases, scaled by trained diagonals.

Per module ``randlora_lambda`` is ``[r, n]`` and ``randlora_gamma`` ``[n, min(in, out)]``; the random
bases ``randlora_A``/``randlora_B`` are frozen buffers, shared under ``base_model.`` (peft's
``randlora/layer.py``). peft's layer merges it, given the shared bases (refused without them)."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, needs_saved

__all__ = ["METHOD"]


METHOD = Tuner(
    peft_types=frozenset({"RANDLORA"}),
    prefixes=("randlora_",),
    rules={"randlora_lambda": ("r", "n"), "randlora_gamma": ("n", lambda d: min(d.inp or 0, d.out or 0) or None)},
    frozen=("randlora_A", "randlora_B"),
    refusals=needs_saved("random bases"),
)
