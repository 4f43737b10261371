"""Token administration over the API."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller, signer

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """Token administration, always as the token's user (never the operator's bootstrap), signed by the client."""
    from fastapi import Body, Depends, Request

    from registry import ApiToken

    @app.post(f"{API}/tokens", tags=["tokens"])
    def create_token(
        request: Request,
        user: str = Body(embed=True),
        label: str | None = Body(default=None, embed=True),
        expires: str = Body(default="90d", embed=True),
        role: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Issue a token for ``user`` (admins only); the secret is in this answer and nowhere else."""
        registry = as_caller(request, token)
        return dict(registry.issue_token(user, label=label, expires=expires, role=role, key=key).to_dict())

    @app.get(f"{API}/tokens", tags=["tokens"])
    def list_tokens(
        request: Request,
        user: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> list[dict[str, Any]]:
        """Tokens, never their secrets: everyone's for an admin, else the caller's own."""
        return [t.to_dict() for t in as_caller(request, token).tokens(user)]

    @app.post(f"{API}/tokens/{{token_id}}/revoke", tags=["tokens"])
    def revoke_token(
        token_id: str,
        request: Request,
        reason: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Revoke a token at once (its owner, or an admin); another user's token is not found."""
        revoked = as_caller(request, token).revoke_token(token_id, reason=reason, key=key)
        return dict(revoked.to_dict())
