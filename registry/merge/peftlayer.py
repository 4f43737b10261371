"""Merge one module the way peft does: build peft's own layer around that one base weight and call its merge.

For a tuner without a kernel of its own (LoHa, LoKr, OFT, BOFT, VeRA, AdaLoRA, FourierFT, HRA, ...),
the streaming merge keeps peft's math by running peft's code on one module at a time:

1. a model holding only that module, under the path the adapter names it by (so ``target_modules``,
   ``layers_to_transform`` and the rank/alpha patterns select it exactly as in the full model), its
   weight (and bias) the base's, in float32;
2. peft wraps it from the adapter's own config (``get_peft_model``), its tensors for that module and
   the shared ones (VeRA's projections: resized first to the saved size, since peft sizes them by the
   largest module it sees) are loaded with ``set_peft_model_state_dict``: every tensor must be taken;
3. the tuner layer's ``merge()``; the base layer's weight and bias are the result.

Memory holds the one module and its adapter tensors. peft, torch and transformers are imported here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from registry.errors import InvalidInput

if TYPE_CHECKING:
    import torch

__all__ = ["merge_module"]

PEFT_PREFIX = "base_model.model."


def _leaf(weight: torch.Tensor, bias: torch.Tensor | None, fan_in_fan_out: bool, embedding: bool) -> Any:
    """The base module peft would have wrapped: Linear, GPT-2's Conv1D, Embedding or Conv2d."""
    import torch
    from torch import nn

    with torch.device("meta"):  # shapes only: the base's own tensors are put in below
        if embedding and weight.dim() == 2:
            leaf: Any = nn.Embedding(weight.shape[0], weight.shape[1])
        elif weight.dim() == 4:
            leaf = nn.Conv2d(
                weight.shape[1], weight.shape[0], (weight.shape[2], weight.shape[3]), bias=bias is not None
            )
        elif weight.dim() == 2 and fan_in_fan_out:
            from transformers.pytorch_utils import Conv1D

            leaf = Conv1D(weight.shape[1], weight.shape[0])  # type: ignore[no-untyped-call]
            if bias is None:
                leaf.bias = None
        elif weight.dim() == 2:
            leaf = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        else:
            raise InvalidInput(f"a base weight of shape {list(weight.shape)} is not a module peft's tuners adapt")
    leaf.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None and not embedding:
        leaf.bias = nn.Parameter(bias, requires_grad=False)
    return leaf


def _model(path: str, leaf: Any) -> Any:
    from torch import nn

    root = nn.Module()
    node = root
    parts = path.split(".")
    for part in parts[:-1]:
        child = nn.Module()
        node.add_module(part, child)
        node = child
    node.add_module(parts[-1], leaf)
    return root


def _config(config: Mapping[str, Any]) -> Any:
    from peft import PeftConfig

    settings = dict(config)
    settings["inference_mode"] = True
    settings.pop("modules_to_save", None)  # replaced by the merge itself, tensor by tensor
    settings["task_type"] = None  # a bare PeftModel: the one-module model has no generation or heads
    return PeftConfig.from_peft_type(**settings)  # type: ignore[no-untyped-call]


def _resize_shared(model: Any, tensors: Mapping[str, torch.Tensor]) -> None:
    """Give peft's shared tensors (outside any module) the saved sizes: peft sizes them by the largest
    module of the model it wraps, which is here the one module being merged."""
    import torch

    for name, value in model.state_dict().items():
        if name.startswith(PEFT_PREFIX):
            continue
        plain = ".".join(p for p in name.split(".") if p != "default")
        saved = tensors.get(plain)
        if saved is not None and tuple(saved.shape) != tuple(value.shape):
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, torch.zeros(saved.shape, dtype=value.dtype))


def merge_module(
    config: Mapping[str, Any],
    path: str,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    tensors: Mapping[str, torch.Tensor],
    fan_in_fan_out: bool,
    embedding: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The merged (weight, bias) of the module the adapter calls ``path``; ``tensors`` are its adapter
    tensors and the shared ones, by their saved names. Raises :class:`InvalidInput` saying why peft refused."""
    import torch
    from peft import get_peft_model, set_peft_model_state_dict

    peft_type = str(config.get("peft_type"))
    with torch.no_grad():
        model = get_peft_model(_model(path, _leaf(weight, bias, fan_in_fan_out, embedding)), _config(config))
        _resize_shared(model, tensors)
        loaded: Any = set_peft_model_state_dict(model, dict(tensors))
        if loaded.unexpected_keys:
            raise InvalidInput(
                f"peft's {peft_type} layer for {path} did not take the adapter tensors "
                f"{sorted(loaded.unexpected_keys)[:3]}; nothing was written"
            )
        layer = model.base_model.model.get_submodule(path)
        try:
            layer.merge()
        except (NotImplementedError, ValueError, RuntimeError) as exc:
            raise InvalidInput(
                f"peft cannot merge the {peft_type} layer of {path}: {exc}; nothing was written"
            ) from None
        merged = layer.get_base_layer()
        new_bias = getattr(merged, "bias", None)
        return merged.weight.detach(), new_bias.detach() if new_bias is not None else None
