"""The catalog's reads: ls and show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from registry.domain.versions import VersionInfo, VersionSummary
from registry.remote._http import API, RemoteBase

__all__ = ["CatalogCalls"]


class CatalogCalls(RemoteBase):
    """The catalog's reads: ls and show."""

    def ls(
        self,
        pattern: str | None = None,
        *,
        base: str | None = None,
        peft_type: str | None = None,
        min_rank: int | None = None,
        max_rank: int | None = None,
        quantization: str | None = None,
        latest: bool = False,
        state: str | None = None,
        channel: str | None = None,
        where: Iterable[object] = (),
        tags: Mapping[str, str] | Iterable[str] = (),
    ) -> list[VersionSummary]:
        """As :meth:`registry.Registry.ls`, answered by the server."""
        pairs = [f"{k}={v}" for k, v in tags.items()] if isinstance(tags, Mapping) else list(tags)
        params: dict[str, Any] = {
            "pattern": pattern, "base": base, "peft_type": peft_type, "min_rank": min_rank, "max_rank": max_rank,
            "quantization": quantization, "latest": "true" if latest else None, "state": state, "channel": channel,
            "where": [str(w) for w in where], "tag": pairs,
        }  # fmt: skip
        rows = self._request("GET", f"{API}/versions", params={k: v for k, v in params.items() if v is not None})
        return [VersionSummary.from_dict(r) for r in rows]

    def show(self, ref: object) -> VersionInfo:
        """As :meth:`registry.Registry.show`, answered by the server."""
        return VersionInfo.from_dict(self._request("GET", f"{API}/versions/{quote(str(ref), safe='/:@')}"))
