"""Where the registry key and the checkpoints live: outside the database and outside its home.

The registry key signs checkpoints (and the ``audit checkpoint`` events that record them). Whoever
administers the database must not be able to sign, so the key and the checkpoints kept for a
registry live in the user's state directory, by registry id::

    $ADAPTERS_STATE_DIR/REGISTRY-ID/registry.key      (0600; .pub beside it)
    $ADAPTERS_STATE_DIR/REGISTRY-ID/checkpoints/      (a copy of every checkpoint written here)

``ADAPTERS_REGISTRY_KEY`` names another key file (a server's, say). A registry an earlier release
created kept its key in ``$ADAPTERS_HOME/keys/registry.key`` and its checkpoints in
``$ADAPTERS_HOME/checkpoints``: those are still used, so old checkpoints keep verifying, until a key
is put in the state directory.
"""

from __future__ import annotations

from pathlib import Path

from registry._io import atomic_write_bytes
from registry.domain import signing

__all__ = ["RegistryKeys"]


class RegistryKeys:
    """The registry key and checkpoint directories of one registry (by its id)."""

    def __init__(self, override: Path | None, home: Path, state_dir: Path) -> None:
        self.override = override
        self.home = home
        self.state_dir = state_dir

    def _legacy_key(self) -> Path:
        return self.home / "keys" / "registry.key"

    def key_path(self, registry_id: str) -> Path:
        if self.override is not None:
            return self.override
        state = self.state_dir / registry_id / "registry.key"
        if not state.is_file() and self._legacy_key().is_file():
            return self._legacy_key()
        return state

    def checkpoint_dir(self, registry_id: str) -> Path:
        """Where a copy of every checkpoint written on this machine is kept."""
        return self.state_dir / registry_id / "checkpoints"

    def checkpoint_dirs(self, registry_id: str) -> list[Path]:
        """Every directory holding checkpoints of this registry (the state directory, and the home's of an
        earlier release)."""
        return [self.checkpoint_dir(registry_id), self.home / "checkpoints"]

    def private_key(self, registry_id: str) -> bytes | None:
        path = self.key_path(registry_id)
        return path.read_bytes() if path.is_file() else None

    def private_key_or_new(self, registry_id: str) -> bytes:
        """The registry key, created (0600, with its .pub) on first use."""
        existing = self.private_key(registry_id)
        if existing is not None:
            return existing
        path = self.key_path(registry_id)
        private, public = signing.generate_keypair()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, private, private=True)
        atomic_write_bytes(path.with_suffix(".pub"), public)
        return private

    def public_key(self, registry_id: str) -> bytes | None:
        path = self.key_path(registry_id)
        private = self.private_key(registry_id)
        if private is not None:
            return signing.public_key_of(private, str(path))
        pub = path.with_suffix(".pub")
        return pub.read_bytes() if pub.is_file() else None
