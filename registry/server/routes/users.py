"""Administering users over the API: add, remove, revoke a role, show one (admins change; anyone reads).

The admin's client reads a new user's public key file and sends its PEM text; the server takes its
fingerprint and records it, refusing anyone but an admin, as the embedded registry does.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller, signer

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    from fastapi import Body, Depends, Request

    from registry import ApiToken

    @app.post(f"{API}/users", tags=["users"])
    def add_user(
        request: Request,
        name: str = Body(embed=True),
        roles: list[str] = Body(default=[], embed=True),
        namespace: str | None = Body(default=None, embed=True),
        public_key: str | None = Body(default=None, embed=True, max_length=16384),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Register a user, grant roles (for ``namespace`` only, if given) and register their public key (PEM)."""
        pem = public_key.encode("utf-8") if public_key is not None else None
        registry = as_caller(request, token)
        return dict(registry.add_user(name, roles=roles, namespace=namespace, public_key=pem, key=key).to_dict())

    @app.get(f"{API}/users/{{name}}", tags=["users"])
    def show_user(name: str, request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        """One user with the history of their role grants and keys."""
        return dict(as_caller(request, token).user_detail(name).to_dict())

    @app.post(f"{API}/users/{{name}}/remove", tags=["users"])
    def remove_user(
        name: str,
        request: Request,
        reason: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Remove a user: they can no longer act; their history stays. Admins only."""
        return dict(as_caller(request, token).remove_user(name, reason=reason, key=key).to_dict())

    @app.post(f"{API}/users/{{name}}/revoke-role", tags=["users"])
    def revoke_role(
        name: str,
        request: Request,
        role: str = Body(embed=True),
        namespace: str | None = Body(default=None, embed=True),
        reason: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Withdraw a role (its grant for the registry, or for ``namespace``). Admins only."""
        result = as_caller(request, token).revoke_role(name, role, namespace=namespace, reason=reason, key=key)
        return dict(result.to_dict())
