"""Users and the audit log."""

from __future__ import annotations

from registry.domain.audit import Event
from registry.identity.results import UserInfo
from registry.remote._http import API, RemoteBase

__all__ = ["PeopleCalls"]


class PeopleCalls(RemoteBase):
    """Users and the audit log."""

    def users(self, *, include_removed: bool = False) -> list[UserInfo]:
        """The users (removed ones too with ``include_removed``), with their roles and key fingerprints."""
        rows = self._request("GET", f"{API}/users", params={"include_removed": "true"} if include_removed else {})
        return [UserInfo.from_dict(r) for r in rows]

    def audit_log(self, ref: object = None) -> list[Event]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        rows = self._request("GET", f"{API}/audit/events", params={"ref": str(ref)} if ref is not None else {})
        return [Event.from_dict(r) for r in rows]
