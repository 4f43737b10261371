"""TrainableTokens: new values for chosen rows of an embedding.

``trainable_tokens_delta`` is ``[len(token_indices), dim]`` against the base embedding
``[num_embeddings, dim]`` (peft's ``trainable_tokens/layer.py``). peft's layer merges it (the rows
are written into the embedding)."""

from __future__ import annotations

from registry.domain.methods.tuner import Dims, Tuner

__all__ = ["METHOD"]


def _tokens(dims: Dims) -> int | None:
    indices = dims.config.get("token_indices")
    return len(indices) if isinstance(indices, list) else None


METHOD = Tuner(
    peft_types=frozenset({"TRAINABLE_TOKENS"}),
    prefixes=("trainable_tokens_",),
    rules={"trainable_tokens_delta": (_tokens, lambda d: d.inp)},
)
