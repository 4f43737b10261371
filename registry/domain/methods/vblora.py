"""VBLoRA: LoRA factors composed from a shared bank of vectors by learned top-k logits.

``vblora_logits_A`` is ``[r, in / vector_length, num_vectors]``, ``vblora_logits_B``
``[out / vector_length, r, num_vectors]``, and the shared ``vblora_vector_bank``
``[num_vectors, vector_length]`` (peft's ``vblora/layer.py``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, divided, from_config

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"VBLORA"}),
    prefixes=("vblora_",),
    rules={
        "vblora_logits_A": ("r", divided("in", "vector_length"), from_config("num_vectors")),
        "vblora_logits_B": (divided("out", "vector_length"), "r", from_config("num_vectors")),
    },
    shared_rules={"vblora_vector_bank": (from_config("num_vectors"), from_config("vector_length"))},
)
