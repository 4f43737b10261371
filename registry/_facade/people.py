"""Users, roles and keys: administering who may act."""

from __future__ import annotations

from collections.abc import Iterable

from registry._facade._base import FacadeBase, KeyLike, PathLike
from registry._io import public_key_bytes
from registry.identity import UserDetail, UserInfo, write_keypair

__all__ = ["PeopleMethods"]


class PeopleMethods(FacadeBase):
    def add_user(
        self,
        name: str,
        *,
        roles: Iterable[str] = (),
        namespace: str | None = None,
        public_key: PathLike | bytes | None = None,
        key: KeyLike | None = None,
    ) -> UserInfo:
        """Register a user, grant roles and register their public key (a new key replaces the one in force:
        key rotation; signatures made with the old key stay verifiable). Admins only (signed with the
        admin's ``key`` when the policy in force requires signatures).

        With ``namespace`` the roles are granted for that namespace only (``reviewer`` of ``credit/*``):
        adapters of other namespaces, and those without one, are then invisible to the user unless
        another grant covers them. ``admin`` is never granted for a namespace."""
        return self._identity.add(
            self._actor, name, list(roles), public_key_bytes(public_key), self._signer(key), namespace=namespace
        )

    def remove_user(self, name: str, *, reason: str | None = None, key: KeyLike | None = None) -> UserInfo:
        """Remove a user: they can no longer act; their history stays, and their signatures still verify.
        Admins only; the last admin cannot be removed."""
        return self._identity.remove(self._actor, name, reason, self._signer(key))

    def revoke_role(
        self,
        name: str,
        role: str,
        *,
        namespace: str | None = None,
        reason: str | None = None,
        key: KeyLike | None = None,
    ) -> UserInfo:
        """Withdraw a role from a user: its grant for the whole registry, or for ``namespace`` (the grant stays
        in the history). Admins only."""
        return self._identity.revoke_role(self._actor, name, role, reason, self._signer(key), namespace=namespace)

    def users(self, *, include_removed: bool = False) -> list[UserInfo]:
        """The users (removed ones too with ``include_removed``), with their roles and key fingerprints."""
        return self._identity.list(include_removed)

    def user_detail(self, name: str) -> UserDetail:
        """One user with the history of their role grants and keys."""
        return self._identity.detail(name)

    @staticmethod
    def generate_key(out: PathLike, name: str) -> dict[str, str]:
        """Write an Ed25519 key pair ``NAME.key`` (mode 0600) and ``NAME.pub`` into ``out``."""
        return write_keypair(out, name)
