"""VeRA: frozen random projections shared by every module, scaled per module by two trained vectors.

Per module ``vera_lambda_b`` is ``[out]`` and ``vera_lambda_d`` ``[r]``; shared, under ``base_model.``,
``vera_A`` is ``[r, max in]`` and ``vera_B`` ``[max out, r]`` over the adapted modules (each module
uses their top-left corner; peft's ``vera/model.py`` ``_init_vera_A_vera_B``). They are frozen
buffers, not trainable. PVeRA is VeRA with a probabilistic bottleneck (``pvera_``). peft's layer
merges both, given the shared projections; without them (``save_projection: false``) the merge
would have to regenerate them from the seed and is refused."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, needs_saved

__all__ = ["METHOD"]


METHOD = Tuner(
    peft_types=frozenset({"VERA"}),
    prefixes=("vera_",),
    rules={"vera_lambda_b": ("out",), "vera_lambda_d": ("r",)},
    shared_rules={"vera_A": ("r", "max_in"), "vera_B": ("max_out", "r")},
    frozen=("vera_A", "vera_B"),
    refusals=needs_saved("projections"),
)

PVERA = Tuner(
    peft_types=frozenset({"PVERA"}),
    prefixes=("pvera_",),
    rules={"pvera_lambda_b": ("out",)},
    frozen=("pvera_A", "pvera_B"),
    refusals=needs_saved("projections"),
)
