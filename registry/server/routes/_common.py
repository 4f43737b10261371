"""What every module of endpoints shares."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

__all__ = ["API", "as_caller", "base_url", "is_blob_upload", "is_json", "signer"]

API = "/api/v1"


def is_json(request: Any) -> bool:
    return str(request.headers.get("content-type", "")).split(";")[0].strip() == "application/json"


def is_blob_upload(request: Any) -> bool:
    """A blob's raw bytes (``PUT /api/v1/blobs/SHA256``): limited per file, not by the JSON body limit."""
    path = str(request.url.path)
    return request.method == "PUT" and path.startswith(f"{API}/blobs/") and "/" not in path[len(API) + 7 :]


def base_url(request: Any) -> str:
    return str(request.base_url).rstrip("/")


def signer(request: Request) -> Any:
    """The signer a request asks for (registry.server.signing): none, a prepare, or the client's signature."""
    from registry.server.signing import signer_of

    return signer_of(request.headers)


def as_caller(request: Any, token: Any) -> Any:
    """The served registry acting as the token's user, every event it records naming the token."""
    from registry.domain.actor import Actor

    return request.app.state.registry.acting_as(Actor(token.user, token_id=token.id))
