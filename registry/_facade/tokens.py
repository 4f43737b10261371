"""API tokens: the credential `adapters serve` knows its callers by."""

from __future__ import annotations

from registry._facade._base import FacadeBase, KeyLike
from registry.domain import signing
from registry.domain.durations import parse_duration
from registry.domain.roles import sorted_roles
from registry.domain.tokens import DEFAULT_TOKEN_LIFETIME, ApiToken, CreatedToken, WhoAmI

__all__ = ["TokenMethods"]


class TokenMethods(FacadeBase):
    def create_token(
        self,
        user: str,
        *,
        label: str | None = None,
        expires: str = DEFAULT_TOKEN_LIFETIME,
        role: str | None = None,
        key: KeyLike | None = None,
    ) -> CreatedToken:
        """Issue a token for ``user``, valid for ``expires`` (``90d``, ``12h``, ``30m``, ``45s``); its secret
        is in the result and nowhere else. Admins only; this embedded registry (direct database access)
        may also bootstrap: ``role="admin"`` on a registry with no users makes ``user`` its admin, and an
        admin who never had a token gets their first one."""
        lifetime = parse_duration(expires, "--expires")
        return self._tokens.create(self._actor, user, label, lifetime, role, operator=True, signer=self._signer(key))

    def issue_token(
        self,
        user: str,
        *,
        label: str | None = None,
        expires: str = DEFAULT_TOKEN_LIFETIME,
        role: str | None = None,
        key: KeyLike | None = None,
    ) -> CreatedToken:
        """For a server: issue a token as the authenticated actor, who has no direct database access, so
        never as the operator (no bootstrap: admins only, and ``role="admin"`` is refused). Signed only by
        the client's own signature (``key``: the server's signer over it), never by a key the server holds."""
        lifetime = parse_duration(expires, "--expires")
        return self._tokens.create(self._actor, user, label, lifetime, role, operator=False, signer=self._signer(key))

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Tokens, never their secrets: everyone's for an admin, else the actor's own."""
        return self._tokens.list(self._actor, user)

    def revoke_token(self, token_id: str, *, reason: str | None = None, key: KeyLike | None = None) -> ApiToken:
        """Revoke a token at once (its owner, or an admin)."""
        return self._tokens.revoke(self._actor, token_id, reason, self._signer(key))

    def authenticate(self, secret: str) -> ApiToken:
        """The active token ``secret`` belongs to (else :class:`~registry.errors.Unauthenticated`)."""
        return self._tokens.authenticate(secret)

    def ensure_registry_key(self) -> str:
        """The fingerprint of the key that signs this registry's checkpoints, created (in the state directory,
        mode 0600) if there is none yet: a server has one from its start, so clients can pin it at login."""
        private = self._audit.keys.private_key_or_new(self._audit.registry_id())
        return signing.fingerprint(signing.public_key_of(private, "the registry key"))

    def whoami(self, token: ApiToken | None = None) -> WhoAmI:
        """The actor, their roles with their scopes (``reviewer``, ``reviewer@credit``), and this registry's id
        and checkpoint key (``token``: the one a server authenticated the actor with)."""
        with self._records.read() as records:
            roles = tuple(r.label for r in sorted_roles(self._identity.scoped_roles(records, self._actor.name)))
        public = self._audit.registry_public_key()
        return WhoAmI(
            user=self._actor.name,
            roles=roles,
            registry=self._db.redacted_url,
            registry_id=self._audit.registry_id(),
            registry_key=signing.fingerprint(public) if public else None,
            token=token,
        )
