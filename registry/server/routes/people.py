"""Users and the audit log over the API."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """``users ls`` and ``audit log``: who may act here, and what they did."""
    from fastapi import Depends, Request

    from registry import ApiToken

    @app.get(f"{API}/users", tags=["users"])
    def list_users(
        request: Request,
        include_removed: bool = False,
        token: ApiToken = Depends(caller),
    ) -> list[dict[str, Any]]:
        """The users (removed ones too with ``include_removed``)."""
        users = as_caller(request, token).users(include_removed=include_removed)
        return [u.to_dict() for u in users]

    @app.get(f"{API}/audit/events", tags=["audit"])
    def audit_events(
        request: Request,
        ref: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> list[dict[str, Any]]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        return [e.to_dict() for e in as_caller(request, token).audit_log(ref)]
