"""The tokens ``adapters login`` stores, one per registry URL, in ``$ADAPTERS_CONFIG_DIR/credentials.json``.

The file is written atomically with mode 0600 (it holds secrets). Next to each token it keeps the
registry's id and the fingerprint of its checkpoint key as first seen (pinned): a later login to
a URL that answers with another key is refused unless the user accepts the new key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from registry._io import atomic_write_bytes
from registry.errors import InvalidInput

__all__ = ["Credentials", "Login", "normalise_url"]

FILE = "credentials.json"


def normalise_url(url: str) -> str:
    """``http(s)://host[:port][/path]`` without a trailing slash; anything else is refused."""
    text = url.strip().rstrip("/")
    if not (text.startswith("https://") or text.startswith("http://")) or len(text.split("://", 1)[1]) == 0:
        raise InvalidInput(
            f"{url!r} is not a registry URL; give the server's address, e.g. https://adapters.internal:8750 "
            "(ADAPTERS_REGISTRY or --registry)"
        )
    return text


@dataclass(frozen=True)
class Login:
    url: str
    token: str
    user: str
    token_id: str
    registry_id: str
    registry_key: str | None


class Credentials:
    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"registries": {}}
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {self.path} ({exc}); remove it and log in again") from None
        if not isinstance(data, dict) or not isinstance(data.get("registries"), dict):
            raise InvalidInput(f"{self.path} is not a credentials file; remove it and log in again")
        return data

    def get(self, url: str) -> Login | None:
        entry = self._read()["registries"].get(normalise_url(url))
        if not isinstance(entry, dict):
            return None
        try:
            return Login(**entry)
        except TypeError:
            return None

    def urls(self) -> list[str]:
        return sorted(self._read()["registries"])

    def save(self, login: Login) -> None:
        data = self._read()
        data["registries"][login.url] = asdict(login)
        atomic_write_bytes(self.path, json.dumps(data, indent=2, sort_keys=True).encode() + b"\n", private=True)

    def remove(self, url: str) -> bool:
        data = self._read()
        found = data["registries"].pop(normalise_url(url), None) is not None
        if found:
            atomic_write_bytes(self.path, json.dumps(data, indent=2, sort_keys=True).encode() + b"\n", private=True)
        return found
