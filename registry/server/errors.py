"""Registry errors as HTTP statuses, and back: one JSON shape, the same message and exit code."""

from __future__ import annotations

from typing import Any

from registry import errors
from registry.server.ratelimit import TooManyFailures
from registry.server.signing import SignatureStale

__all__ = ["error_body", "status_of"]

#: Most specific first: the first class an error is an instance of gives its status.
_STATUS: tuple[tuple[type[errors.RegistryError], int], ...] = (
    (TooManyFailures, 429),
    (errors.Unauthenticated, 401),
    (errors.TooLarge, 413),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (SignatureStale, 409),
    (errors.AmbiguousReference, 409),
    (errors.InvalidTransition, 409),
    (errors.DestinationExists, 409),
    (errors.Conflict, 409),
    (errors.CheckFailed, 422),  # a policy or check that did not pass: exit code 3
    (errors.InvalidInput, 422),
    (errors.IntegrityError, 500),
    (errors.StorageError, 503),
)


def status_of(exc: errors.RegistryError) -> tuple[int, int]:
    """The HTTP status and the CLI exit code of ``exc``."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status, exc.exit_code
    return 500, exc.exit_code


def error_body(kind: str, message: str, exit_code: int) -> dict[str, Any]:
    return {"error": kind, "message": message, "exit_code": exit_code}
