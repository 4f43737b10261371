"""IA3: learned vectors that scale a module's outputs, or, for feed-forward modules, its inputs.

``ia3_l`` is ``[out, 1]`` for a module that scales its outputs and ``[1, in]`` for one listed in
``feedforward_modules`` (it scales the inputs). The merge is peft's ``IA3Layer.merge``:
``W' = W * T(l)``, and for a non feed-forward module with a bias, ``b' = b * l``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.domain.adapterdir import target_matches
from registry.domain.methods.base import ColumnScale, MergePlan, Shapes, shape_text, split_suffix

__all__ = ["IA3", "METHOD", "is_feedforward"]


def is_feedforward(module: str, feedforward: Any) -> bool:
    """Whether ``module`` is one of the config's ``feedforward_modules`` (a list, or a regex string)."""
    if isinstance(feedforward, str):
        return re.fullmatch(feedforward, module) is not None
    return any(target_matches(f, module) for f in feedforward or [])


class IA3:
    peft_types = frozenset({"IA3"})

    def split(self, name: str) -> tuple[str, str] | None:
        return split_suffix(name, ("ia3_l",))

    def check(
        self, shapes: Shapes, tensor: str, path: str, role: str, shape: tuple[int, ...], config: Mapping[str, Any]
    ) -> None:
        found = shapes.module(tensor, path)
        if found is None:
            return
        module, w = found
        features = shapes.features(w) if len(w) == 2 else None
        if features is None:
            shapes.fail(module, f"IA3 vector {shape_text(shape)} targets a base weight of shape {shape_text(w)}")
            return
        out_f, in_f = features
        feedforward = is_feedforward(path, config.get("feedforward_modules"))
        want = (1, in_f) if feedforward else (out_f, 1)
        if tuple(shape) != want:
            role_text = "a feed-forward module: it scales the inputs" if feedforward else "it scales the outputs"
            shapes.fail(
                module,
                f"IA3 vector {shape_text(shape)} should be {shape_text(want)} ({role_text}) for base weight {shape_text(w)}",
            )
            return
        shapes.fitted.add(module)

    def trainable(self, role: str, dtype: str) -> bool:
        return True

    def merge_refusal(self, config: Mapping[str, Any], ref: str) -> str | None:
        return None

    def plan(self, plan: MergePlan, config: Mapping[str, Any], module: str, role: str, key: str) -> None:
        plan.ops[f"{module}.weight"] = ColumnScale(key)
        if not is_feedforward(module, config.get("feedforward_modules") or []):
            plan.ops[f"{module}.bias"] = ColumnScale(key, bias=True)

    def finish(self, plan: MergePlan, base: Mapping[str, tuple[int, ...]]) -> None:
        for name, op in list(plan.ops.items()):  # only where the base has a bias
            if isinstance(op, ColumnScale) and op.bias and name not in base:
                del plan.ops[name]


METHOD = IA3()
