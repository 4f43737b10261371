"""HRA: a chain of ``r`` Householder reflections of the base's input space.

``hra_u`` is ``[in, r]`` (peft's ``hra/layer.py`` ``HRALayer.update_layer``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner

__all__ = ["METHOD"]

METHOD = Tuner(peft_types=frozenset({"HRA"}), prefixes=("hra_",), rules={"hra_u": ("in", "r")})
