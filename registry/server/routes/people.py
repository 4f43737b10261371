"""Users over the API."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """``users ls``: who may act here."""
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
