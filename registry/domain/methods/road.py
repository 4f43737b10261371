"""RoAd: 2-D rotations of pairs of output features, by trained angles and scales.

``road_theta`` and ``road_alpha`` are vectors whose length depends on the variant (``road_1``:
``out / 2``; ``road_2``: ``out``; ``road_4``: ``2 * out``; peft's ``road/layer.py``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Dims, Tuner

__all__ = ["METHOD"]

_LENGTH = {"road_1": 0.5, "road_2": 1, "road_4": 2}


def _length(dims: Dims) -> int | None:
    factor = _LENGTH.get(str(dims.config.get("variant", "road_1")))
    return int(dims.out * factor) if factor is not None and dims.out else None


METHOD = Tuner(
    peft_types=frozenset({"ROAD"}),
    prefixes=("road_",),
    rules={"road_theta": (_length,), "road_alpha": (_length,)},
)
