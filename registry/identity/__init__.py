"""Users, roles and keys; who may do what (:mod:`registry.identity.service`), the keys signatures are
checked against (:mod:`registry.identity.keyring`) and what the service returns
(:mod:`registry.identity.results`).

The names are loaded when first used, so that importing :mod:`registry.identity.results` (a client of
the registry server does) does not load the database layer the service and the keyring stand on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.identity.keyring import KeyRing, write_keypair
    from registry.identity.results import GrantInfo, KeyInfo, UserDetail, UserInfo
    from registry.identity.service import Identity

__all__ = ["GrantInfo", "Identity", "KeyInfo", "KeyRing", "UserDetail", "UserInfo", "write_keypair"]

_WHERE = {
    "KeyRing": "keyring", "write_keypair": "keyring", "GrantInfo": "results", "KeyInfo": "results",
    "UserDetail": "results", "UserInfo": "results", "Identity": "service",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
