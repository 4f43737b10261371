"""OFT: an orthogonal rotation of the base's input space, block-diagonal in ``n`` blocks of size ``b``.

``oft_R.weight`` is ``[n, b * (b - 1) / 2]``: each block's skew-symmetric generator stored as its
upper triangle, with ``n * b = in`` and ``b`` the config's ``oft_block_size`` (or ``in / r``; peft's
``oft/layer.py`` ``OFTRotationModule``). peft's layer merges it (``W' = W @ R`` by Cayley transform)."""

from __future__ import annotations

from registry.domain.methods.tuner import Dims, Tuner, side_of

__all__ = ["METHOD"]


def _block(dims: Dims) -> int | None:
    size = dims.config.get("oft_block_size")
    if isinstance(size, int) and size > 0:
        return size
    r = dims.config.get("r")
    return dims.inp // r if isinstance(r, int) and r > 0 and dims.inp else None


METHOD = Tuner(
    peft_types=frozenset({"OFT"}),
    prefixes=("oft_",),
    rules={"oft_R.weight": ("n", "t")},
    constraints=(side_of("t", "n", "in", _block),),
)
