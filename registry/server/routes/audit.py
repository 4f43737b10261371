"""The audit log over the API: its events, checkpoints signed by the registry key (which stays here),
the export a client verifies itself, and the facts of an audit report.

A client verifies the registry with its own trust material (the checkpoints it keeps and the
registry key it pinned at login): the server exports what verification reads and nothing here
says whether the history is intact. Only the blob store, which clients cannot list, is checked
here, on request, and marked as the server's check in the export.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """``audit log``, ``audit checkpoint``, and what ``audit verify`` and ``audit report`` read."""
    from fastapi import Depends, Request, Response

    from registry import ApiToken

    def exact_json(value: Any) -> Response:
        # Large answers, written once without FastAPI's per-value encoding; ASCII-escaped, so every string
        # (an edited payload included) reaches the client exactly as stored.
        return Response(json.dumps(value, ensure_ascii=True).encode("ascii"), media_type="application/json")

    @app.get(f"{API}/audit/events", tags=["audit"])
    def audit_events(
        request: Request,
        ref: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> list[dict[str, Any]]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        return [e.to_dict() for e in as_caller(request, token).audit_log(ref)]

    @app.get(f"{API}/audit/key", tags=["audit"])
    def registry_key(request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        """The registry's id and the key that signs its checkpoints (a client uses it only if it is the one
        pinned at login)."""
        return dict(as_caller(request, token).audit_key())

    @app.post(f"{API}/audit/checkpoints", tags=["audit"])
    def audit_checkpoint(request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        """Record a checkpoint of the log signed by the registry key and return it (auditors and admins);
        the client writes the files. A copy is kept in the server's state directory."""
        checkpoint = as_caller(request, token).audit_checkpoint([])
        return dict(checkpoint.to_dict())

    @app.get(f"{API}/audit/export", tags=["audit"])
    def audit_export(
        request: Request,
        blobs: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> Response:
        """Every event and fact row as stored (what ``audit verify`` reads), the registry key in use, and with
        ``blobs`` (``quick``, ``full``) the server's check of the blob store."""
        return exact_json(as_caller(request, token).audit_export(blobs=blobs).to_dict())

    @app.get(f"{API}/audit/report", tags=["audit"])
    def audit_report_facts(
        request: Request,
        subject: str | None = None,
        since: str | None = None,
        until: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> Response:
        """The audit report's facts (its JSON form) but its integrity section, which the client adds from its
        own verification."""
        return exact_json(as_caller(request, token).audit_report_facts(subject, since=since, until=until))
