"""LN tuning: trained copies of the targeted (layer-norm) modules.

``ln_tuning_layers.weight`` (and ``.bias``) have the base module's own shapes; merging replaces the
base's tensors with them, which is what peft's ``LNTuningLayer.merge`` does (it swaps the modules)."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"LN_TUNING"}),
    prefixes=("ln_tuning_layers",),
    rules={"ln_tuning_layers.weight": ("W",)},
    merge="replace",
)
