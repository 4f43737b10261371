"""The catalog's reads over the API: ``ls`` and ``show``."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """``ls`` and ``show``: the same filters and the same result objects as the embedded registry."""
    from fastapi import Depends, Query, Request

    from registry import ApiToken

    @app.get(f"{API}/versions", tags=["catalog"])
    def list_versions(
        request: Request,
        pattern: str | None = None,
        base: str | None = None,
        peft_type: str | None = None,
        min_rank: int | None = None,
        max_rank: int | None = None,
        quantization: str | None = None,
        latest: bool = False,
        state: str | None = None,
        channel: str | None = None,
        where: list[str] = Query(default=[]),
        tag: list[str] = Query(default=[]),
        token: ApiToken = Depends(caller),
    ) -> list[dict[str, Any]]:
        """One entry per version, filtered as `adapters ls` filters (``where`` and ``tag`` repeat)."""
        rows = as_caller(request, token).ls(
            pattern, base=base, peft_type=peft_type, min_rank=min_rank, max_rank=max_rank,
            quantization=quantization, latest=latest, state=state, channel=channel, where=where, tags=tag,
        )  # fmt: skip
        return [r.to_dict() for r in rows]

    @app.get(f"{API}/versions/{{ref:path}}", tags=["catalog"])
    def show_version(ref: str, request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        """Every fact of one version (``name:3``, ``name@production``, ``team/name:latest``)."""
        info = as_caller(request, token).show(ref)
        return dict(info.to_dict())
