"""PEFT methods: one module per method, each knowing its tensors, their shapes and how it merges.

:func:`method_for` finds the module for a ``peft_type``; verification and the merge read methods
only through :class:`~registry.domain.methods.base.Method`. To add a method, write a module with a
``METHOD`` object (most tuners are a :class:`~registry.domain.methods.tuner.Tuner`) and list it in
``_KNOWN``.
"""

from __future__ import annotations

from registry.domain.methods import (
    adalora,
    boft,
    c3a,
    delora,
    fourierft,
    hra,
    ia3,
    ln_tuning,
    loha,
    lokr,
    lora,
    miss,
    oft,
    others,
    prompt,
    randlora,
    road,
    shira,
    trainable_tokens,
    vblora,
    vera,
    waveft,
)
from registry.domain.methods.base import Method

__all__ = ["METHODS", "method_for"]

_KNOWN: tuple[Method, ...] = (
    lora.METHOD,
    ia3.METHOD,
    prompt.METHOD,
    adalora.METHOD,
    loha.METHOD,
    lokr.METHOD,
    oft.METHOD,
    boft.METHOD,
    vera.METHOD,
    vera.PVERA,
    fourierft.METHOD,
    waveft.METHOD,
    ln_tuning.METHOD,
    hra.METHOD,
    miss.METHOD,
    c3a.METHOD,
    randlora.METHOD,
    vblora.METHOD,
    shira.METHOD,
    road.METHOD,
    delora.METHOD,
    trainable_tokens.METHOD,
    *others.TUNERS,
)

#: Every known method by the peft_type values it handles.
METHODS: dict[str, Method] = {peft_type: m for m in _KNOWN for peft_type in m.peft_types}


def method_for(peft_type: str) -> Method | None:
    """The method module for a ``peft_type`` (upper case), or None when no module knows it."""
    return METHODS.get(peft_type.upper())
