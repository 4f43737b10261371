"""Users."""

from __future__ import annotations

from registry.identity.results import UserInfo
from registry.remote._http import API, RemoteBase

__all__ = ["PeopleCalls"]


class PeopleCalls(RemoteBase):
    """Users."""

    def users(self, *, include_removed: bool = False) -> list[UserInfo]:
        """The users (removed ones too with ``include_removed``), with their roles and key fingerprints."""
        rows = self._request("GET", f"{API}/users", params={"include_removed": "true"} if include_removed else {})
        return [UserInfo.from_dict(r) for r in rows]
