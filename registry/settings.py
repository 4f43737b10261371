"""Settings, read from the environment in this one place.

=================  ==========================================================
``ADAPTERS_HOME``   directory holding the default SQLite file and blob store
                    (default ``~/.adapters``)
``ADAPTERS_DB``     SQLAlchemy URL of the metadata database (default
                    ``sqlite:///$ADAPTERS_HOME/registry.db``; teams use
                    ``postgresql+psycopg://user@host/db``)
``ADAPTERS_STORE``  the blob store: a directory or ``s3://BUCKET[/PREFIX]`` (default
                    ``$ADAPTERS_HOME/blobs``)
``ADAPTERS_USER``   the acting user's name (default: the login name)
``ADAPTERS_KEY``    the acting user's Ed25519 private key, for signed actions
``ADAPTERS_REGISTRY_KEY``  the registry's key that signs audit checkpoints, kept outside
                    the database and its home (default ``$ADAPTERS_STATE_DIR/REGISTRY-ID/registry.key``)
``ADAPTERS_STATE_DIR``  the user's state directory: the registry key and the checkpoints of each
                    registry, where the database's administrators cannot write (default
                    ``$XDG_STATE_HOME/adapters``, i.e. ``~/.local/state/adapters``)
``ADAPTERS_CONFIG_DIR``  the user's configuration: trust files of registries (``trust/REGISTRY-ID.json``)
                    and, for remote registries, credentials (default ``$XDG_CONFIG_HOME/adapters``)
``ADAPTERS_MAX_BLOB_BYTES``  the largest file ``adapters serve`` accepts in a push (bytes; default
                    64 GiB); a larger one is refused with 413 before any byte of it is stored
``ADAPTERS_DEBUG``  ``1`` shows tracebacks in the CLI, and the warnings and progress bars of
                    transformers, peft and bitsandbytes (hidden otherwise)
=================  ==========================================================
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_MAX_BLOB_BYTES", "Settings", "debug_enabled"]

#: The largest file a server accepts in a push unless ``ADAPTERS_MAX_BLOB_BYTES`` says otherwise.
DEFAULT_MAX_BLOB_BYTES = 64 << 30


def debug_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``ADAPTERS_DEBUG`` is set (to anything but 0)."""
    env = os.environ if env is None else env
    return env.get("ADAPTERS_DEBUG", "") not in ("", "0")


def _default_user(env: Mapping[str, str]) -> str:
    user = env.get("ADAPTERS_USER", "").strip()
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def _max_blob_bytes(env: Mapping[str, str]) -> int:
    raw = env.get("ADAPTERS_MAX_BLOB_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_BLOB_BYTES
    if not raw.isdigit() or int(raw) < 1:
        from registry.errors import InvalidInput

        raise InvalidInput(f"ADAPTERS_MAX_BLOB_BYTES={raw!r} is not a positive number of bytes (e.g. 68719476736)")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """Where the registry keeps its data and who is acting."""

    home: Path
    db_url: str
    store: str
    user: str
    debug: bool = False
    key: Path | None = None
    registry_key: Path | None = None  # None: in the state directory, by registry id (see AuditLog)
    state_dir: Path = Path("~/.local/state/adapters")
    config_dir: Path = Path("~/.config/adapters")
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES

    @classmethod
    def from_env(
        cls,
        home: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from the environment; ``home`` (the CLI's ``--home``) overrides ``ADAPTERS_HOME``.

        ``ADAPTERS_DB`` and ``ADAPTERS_STORE`` win over the defaults derived from the home.
        """
        env = os.environ if env is None else env
        raw_home = home if home is not None else env.get("ADAPTERS_HOME") or "~/.adapters"
        home_path = Path(raw_home).expanduser().resolve()
        db_url = env.get("ADAPTERS_DB") or f"sqlite:///{home_path / 'registry.db'}"
        store = env.get("ADAPTERS_STORE") or str(home_path / "blobs")
        key = env.get("ADAPTERS_KEY")
        registry_key = env.get("ADAPTERS_REGISTRY_KEY")
        state = env.get("ADAPTERS_STATE_DIR") or str(Path(env.get("XDG_STATE_HOME") or "~/.local/state") / "adapters")
        config = env.get("ADAPTERS_CONFIG_DIR") or str(Path(env.get("XDG_CONFIG_HOME") or "~/.config") / "adapters")
        return cls(
            home=home_path,
            db_url=db_url,
            store=store,
            user=_default_user(env),
            debug=debug_enabled(env),
            key=Path(key).expanduser() if key else None,
            registry_key=Path(registry_key).expanduser() if registry_key else None,
            state_dir=Path(state).expanduser(),
            config_dir=Path(config).expanduser(),
            max_blob_bytes=_max_blob_bytes(env),
        )

    @property
    def cache_dir(self) -> Path:
        """Machine-local caches (file hashes of base models); never shared between machines."""
        return self.home / "cache"
