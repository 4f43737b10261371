"""SHiRA: a sparse high-rank update of ``r * (in + out)`` chosen entries of the base weight.

``shira_weight`` is ``[k]`` and ``shira_indices`` ``[2, k]`` (row and column of each entry, integers, not
trainable), ``k = r * (in + out)`` for the default mask (peft's ``shira/layer.py``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"SHIRA"}),
    prefixes=("shira_",),
    rules={"shira_weight": ("k",), "shira_indices": (2, "k")},
    frozen=("shira_indices",),
)
