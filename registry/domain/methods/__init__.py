"""PEFT methods: one module per method, each knowing its tensors, their shapes and how it merges.

:func:`method_for` finds the module for a ``peft_type``; verification and the merge read methods
only through :class:`~registry.domain.methods.base.Method`. To add a method, write a module with a
``METHOD`` object and list it in ``_KNOWN``.
"""

from __future__ import annotations

from registry.domain.methods import ia3, lora, prompt
from registry.domain.methods.base import Method

__all__ = ["METHODS", "method_for"]

_KNOWN: tuple[Method, ...] = (lora.METHOD, ia3.METHOD, prompt.METHOD)

#: Every known method by the peft_type values it handles.
METHODS: dict[str, Method] = {peft_type: m for m in _KNOWN for peft_type in m.peft_types}


def method_for(peft_type: str) -> Method | None:
    """The method module for a ``peft_type`` (upper case), or None when no module knows it."""
    return METHODS.get(peft_type.upper())
