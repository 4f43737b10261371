"""``adapters login URL``: check a token against the server, pin the registry's key, store the token."""

from __future__ import annotations

from pathlib import Path

from registry.errors import PermissionDenied
from registry.remote.client import RemoteRegistry
from registry.remote.credentials import Credentials, Login, normalise_url

__all__ = ["login", "logout"]


def login(url: str, token: str, config_dir: Path, accept_new_registry_key: bool = False) -> Login:
    """Ask the server who ``token`` is; refuse a registry key other than the one pinned at an earlier login
    unless ``accept_new_registry_key``; store the token (mode 0600)."""
    url = normalise_url(url)
    with RemoteRegistry(url, token.strip()) as remote:
        me = remote.whoami()
    credentials = Credentials(config_dir)
    before = credentials.get(url)
    if (
        before is not None
        and before.registry_key is not None
        and before.registry_key != me.registry_key
        and not accept_new_registry_key
    ):
        raise PermissionDenied(
            f"{url} now signs its checkpoints with the key {me.registry_key}, not {before.registry_key} as when you "
            "first logged in: another server may answer at that address, or the registry key was replaced. Ask its "
            "operator, then log in with --accept-new-registry-key if the change is expected"
        )
    assert me.token is not None
    found = Login(url, token.strip(), me.user, me.token.id, me.registry_id, me.registry_key)
    credentials.save(found)
    return found


def logout(url: str, config_dir: Path) -> bool:
    """Forget the token stored for ``url``; whether there was one."""
    return Credentials(config_dir).remove(url)
