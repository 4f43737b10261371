"""Administering users: add, remove, revoke a role, show one."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from registry._io import public_key_bytes
from registry.identity.results import UserDetail, UserInfo
from registry.remote._http import API, RemoteBase

__all__ = ["UserCalls"]


class UserCalls(RemoteBase):
    """Administering users (admins change; anyone reads). A public key file is read here, its PEM sent."""

    def add_user(
        self,
        name: str,
        *,
        roles: Iterable[str] = (),
        namespace: str | None = None,
        public_key: object = None,
        key: object = None,
    ) -> UserInfo:
        pem = public_key_bytes(public_key) if public_key is not None else None  # type: ignore[arg-type]
        body = {
            "name": name, "roles": list(roles), "namespace": namespace,
            "public_key": pem.decode("ascii", errors="replace") if pem is not None else None,
        }  # fmt: skip
        # the action signed is "user add" for a new user, "user update" for one that exists: either names them
        d = self._signed("POST", f"{API}/users", key, ("user add", "user update"), name, json=body)
        return UserInfo.from_dict(d)

    def user_detail(self, name: str) -> UserDetail:
        return UserDetail.from_dict(self._request("GET", f"{API}/users/{quote(name, safe='')}"))

    def remove_user(self, name: str, *, reason: str | None = None, key: object = None) -> UserInfo:
        path = f"{API}/users/{quote(name, safe='')}/remove"
        return UserInfo.from_dict(self._signed("POST", path, key, "user remove", name, json={"reason": reason}))

    def revoke_role(
        self, name: str, role: str, *, namespace: str | None = None, reason: str | None = None, key: object = None
    ) -> UserInfo:
        path = f"{API}/users/{quote(name, safe='')}/revoke-role"
        body = {"role": role, "namespace": namespace, "reason": reason}
        return UserInfo.from_dict(self._signed("POST", path, key, "role revoke", name, json=body))
