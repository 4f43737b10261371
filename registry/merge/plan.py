"""The merge plan: which base tensor gets which operation, from the adapter's method module.

Every adapter tensor must land somewhere: a tensor of the method's (handed to its module's
``plan``), a ``modules_to_save`` tensor (it replaces the base's), or the merge refuses the adapter
and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.domain.adapterdir import strip_peft_prefix, target_matches
from registry.domain.compat import base_modules
from registry.domain.methods import method_for
from registry.domain.methods.base import MergePlan, Method, Replace, find_module, tensor_infos
from registry.domain.methods.tuner import SHARED
from registry.errors import InvalidInput

__all__ = ["mergeable_method", "plan_merge"]


def mergeable_method(config: Mapping[str, Any], ref: str) -> Method:
    """The adapter's method module, or :class:`InvalidInput` saying why it cannot be merged."""
    peft_type = str(config.get("peft_type", "")).upper()
    method = method_for(peft_type)
    if method is None:
        raise InvalidInput(
            f"{ref} is a {peft_type} adapter, a method the streaming merge does not know; merge it with peft's "
            "merge_and_unload instead"
        )
    refusal = method.merge_refusal(config, ref)
    if refusal is not None:
        raise InvalidInput(refusal)
    return method


def plan_merge(
    method: Method,
    config: Mapping[str, Any],
    tensors: Mapping[str, tuple[int, ...]],
    base: Mapping[str, tuple[int, ...]],
) -> MergePlan:
    """Map every adapter tensor to the base tensor it changes; refuse tensors that map to nothing."""
    modules = base_modules(tensor_infos(base))  # module -> weight shape
    plan = MergePlan()
    saved = config.get("modules_to_save") or []
    for key in sorted(tensors):
        name = strip_peft_prefix(key)
        path, _, leaf = name.rpartition(".")
        split = method.split(name)
        if split is not None and split[0] == SHARED:  # shared by every module (VeRA's projections)
            method.plan(plan, config, SHARED, split[1], key)
        elif split is not None:
            module = find_module(split[0], modules)
            if module is None:
                raise InvalidInput(
                    f"adapter tensor {key}: the base has no module {split[0]!r}; nothing to merge it into"
                )
            method.plan(plan, config, module, split[1], key)
        elif leaf in ("weight", "bias") and any(target_matches(s, path) for s in saved):
            module = find_module(path, modules)
            target = f"{module}.{leaf}" if module else None
            if target is None or target not in base:
                raise InvalidInput(
                    f"adapter tensor {key} (modules_to_save) has no counterpart {path}.{leaf} in the base"
                )
            plan.ops[target] = Replace(key)
        else:
            raise InvalidInput(f"adapter tensor {key} has no role the merge knows; nothing was written")
    method.finish(plan, base)
    return plan
