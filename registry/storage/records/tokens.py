"""API tokens: issued (a fact), revoked (a fact), last used (a convenience, updated)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from registry.domain.tokens import ApiToken
from registry.storage.records._base import Queries
from registry.storage.tables import API_TOKENS, TOKEN_REVOCATIONS, TOKEN_USES

__all__ = ["TokenQueries"]


class TokenQueries(Queries):
    def _token_query(self) -> Any:
        t, r, u = API_TOKENS, TOKEN_REVOCATIONS, TOKEN_USES
        return (
            select(t, r.c.revoked_at, r.c.revoked_by, u.c.last_used_at)
            .outerjoin(r, r.c.token_id == t.c.token_id)
            .outerjoin(u, u.c.token_id == t.c.token_id)
        )

    @staticmethod
    def _token(r: Any) -> ApiToken:
        return ApiToken(
            id=r.token_id,
            user=r.user_name,
            label=r.label,
            created_at=r.created_at,
            created_by=r.created_by,
            expires_at=r.expires_at,
            revoked_at=r.revoked_at,
            revoked_by=r.revoked_by,
            last_used_at=r.last_used_at,
        )

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Tokens, oldest first (one user's, or everyone's when None)."""
        if not self._exists(API_TOKENS):
            return []
        query = self._token_query().order_by(API_TOKENS.c.id)
        if user is not None:
            query = query.where(API_TOKENS.c.user_name == user)
        return [self._token(r) for r in self._all(query)]

    def token(self, token_id: str) -> ApiToken | None:
        if not self._exists(API_TOKENS):
            return None
        row = self._session.execute(self._token_query().where(API_TOKENS.c.token_id == token_id)).first()
        return self._token(row) if row is not None else None

    def token_by_secret_hash(self, secret_sha256: str) -> tuple[ApiToken, str] | None:
        """The token whose secret hashes to ``secret_sha256``, and the stored hash (to compare in constant time)."""
        if not self._exists(API_TOKENS):
            return None
        row = self._session.execute(self._token_query().where(API_TOKENS.c.secret_sha256 == secret_sha256)).first()
        return (self._token(row), str(row.secret_sha256)) if row is not None else None

    def insert_token(self, token: ApiToken, secret_sha256: str) -> None:
        self._insert_fact(
            API_TOKENS,
            {
                "token_id": token.id,
                "user_name": token.user,
                "label": token.label,
                "secret_sha256": secret_sha256,
                "created_at": token.created_at,
                "created_by": token.created_by,
                "expires_at": token.expires_at,
            },
        )

    def insert_token_revocation(self, token_id: str, at: str, by: str, reason: str | None) -> None:
        self._insert_fact(
            TOKEN_REVOCATIONS, {"token_id": token_id, "revoked_at": at, "revoked_by": by, "reason": reason}
        )

    def touch_token(self, token_id: str, at: str) -> None:
        """Record that the token was used at ``at`` (not a fact: no event records it)."""
        t = TOKEN_USES
        updated = self._session.execute(t.update().where(t.c.token_id == token_id).values(last_used_at=at))
        if not getattr(updated, "rowcount", 0):
            self._session.execute(t.insert().values(token_id=token_id, last_used_at=at))
