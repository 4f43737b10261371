"""Token administration."""

from __future__ import annotations

from urllib.parse import quote

from registry.domain.tokens import DEFAULT_TOKEN_LIFETIME, ApiToken, CreatedToken
from registry.remote._http import API, RemoteBase

__all__ = ["TokenCalls"]


class TokenCalls(RemoteBase):
    """Token administration."""

    def create_token(
        self,
        user: str,
        *,
        label: str | None = None,
        expires: str = DEFAULT_TOKEN_LIFETIME,
        role: str | None = None,
        key: object = None,
    ) -> CreatedToken:
        """Issue a token for ``user`` as the caller (admins only; no bootstrap over the API)."""
        body = {"user": user, "label": label, "expires": expires, "role": role}
        d = self._signed("POST", f"{API}/tokens", key, "token create", user, json=body)
        return CreatedToken(secret=str(d["secret"]), token=ApiToken.from_dict(d))

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Tokens, never their secrets: everyone's for an admin, else the caller's own."""
        rows = self._request("GET", f"{API}/tokens", params={"user": user} if user is not None else {})
        return [ApiToken.from_dict(r) for r in rows]

    def revoke_token(self, token_id: str, *, reason: str | None = None, key: object = None) -> ApiToken:
        """Revoke a token at once (its owner, or an admin)."""
        path = f"{API}/tokens/{quote(token_id, safe='')}/revoke"
        return ApiToken.from_dict(self._signed("POST", path, key, "token revoke", None, json={"reason": reason}))
