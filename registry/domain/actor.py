"""Who is acting: a value passed with every call, never fixed when services are built.

Embedded, the actor is ``ADAPTERS_USER`` (or the login name). Behind ``adapters serve`` it is the
user of the token the request carried, and ``token_id`` names that token, so one process serves
many authenticated users and every record says who made it.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.errors import InvalidInput

__all__ = ["Actor"]

MAX_USER_NAME = 255


@dataclass(frozen=True)
class Actor:
    """The user an action is performed as (and, remotely, the token that proved it)."""

    name: str
    token_id: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip() or len(self.name) > MAX_USER_NAME:
            raise InvalidInput(
                f"invalid user name {self.name!r}: a user name is 1 to {MAX_USER_NAME} characters, not blank"
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in self.name):
            raise InvalidInput(f"invalid user name {self.name!r}: it contains control characters")

    def __str__(self) -> str:
        return self.name
