"""Users, roles and keys; who may do what (:mod:`registry.identity.service`), the keys signatures are
checked against (:mod:`registry.identity.keyring`) and what the service returns
(:mod:`registry.identity.results`)."""

from __future__ import annotations

from registry.identity.keyring import KeyRing, write_keypair
from registry.identity.results import GrantInfo, KeyInfo, UserDetail, UserInfo
from registry.identity.service import Identity

__all__ = ["GrantInfo", "Identity", "KeyInfo", "KeyRing", "UserDetail", "UserInfo", "write_keypair"]
