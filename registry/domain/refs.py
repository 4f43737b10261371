"""Names and references.

A name is ``[a-z0-9]+([._-][a-z0-9]+)*`` with at most one ``namespace/`` level.
A reference points at one version:

==========================  =======================================
``NAME``                    the latest version
``NAME:N``                  version N
``NAME@CHANNEL``            the version a channel points to
``NAME@sha256:PREFIX``      the version whose digest starts with PREFIX
                            (at least 12 hex digits, unique)
==========================  =======================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidName, InvalidReference

__all__ = [
    "DIGEST_PREFIX_MIN",
    "Ref",
    "validate_channel",
    "validate_name",
]

_SEGMENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_NAME_RE = re.compile(rf"^(?:{_SEGMENT}/)?{_SEGMENT}$")
_CHANNEL_RE = re.compile(rf"^{_SEGMENT}$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")
MAX_NAME_LENGTH = 128
#: The fewest hex digits a digest reference may give.
DIGEST_PREFIX_MIN = 12


def _why_invalid(name: str) -> str | None:
    if not name:
        return "it is empty"
    if name != name.strip() or any(c.isspace() for c in name):
        return "it contains spaces"
    if ".." in name:
        return "it contains '..'"
    if name.count("/") > 1:
        return "only one 'namespace/' level is allowed"
    if name.startswith("/") or name.endswith("/"):
        return "it starts or ends with '/'"
    if name != name.lower():
        return "it contains upper-case letters"
    return None


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid adapter name, else raise :class:`InvalidName`."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(name, why=f"it is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME_RE.match(name):
        raise InvalidName(name, why=_why_invalid(name))
    return name


def validate_channel(channel: str) -> str:
    """Return ``channel`` if it is a valid channel name, else raise :class:`InvalidName`."""
    if len(channel) > MAX_NAME_LENGTH or not _CHANNEL_RE.match(channel):
        raise InvalidName(channel, kind="channel", why=_why_invalid(channel))
    return channel


@dataclass(frozen=True)
class Ref:
    """A parsed reference. At most one of ``version``, ``channel``, ``digest`` is set."""

    name: str
    version: int | None = None
    channel: str | None = None
    digest: str | None = None  # hex prefix, lower case, without "sha256:"

    def __post_init__(self) -> None:
        validate_name(self.name)
        if sum(x is not None for x in (self.version, self.channel, self.digest)) > 1:
            raise InvalidReference(str(self), "give only one of :N, @CHANNEL, @sha256:")
        if self.version is not None and self.version < 1:
            raise InvalidReference(str(self), "version numbers start at 1")
        if self.channel is not None:
            validate_channel(self.channel)
        if self.digest is not None and (
            len(self.digest) < DIGEST_PREFIX_MIN or len(self.digest) > 64 or not _HEX_RE.match(self.digest)
        ):
            raise InvalidReference(
                str(self), f"a digest reference needs {DIGEST_PREFIX_MIN} to 64 lower-case hex digits"
            )

    @classmethod
    def parse(cls, text: str) -> Ref:
        """Parse ``NAME``, ``NAME:N``, ``NAME@CHANNEL`` or ``NAME@sha256:PREFIX``."""
        raw = text.strip()
        if not raw:
            raise InvalidReference(text, "it is empty")
        if "@" in raw:
            name, _, target = raw.partition("@")
            if target.startswith("sha256:"):
                digest = target[len("sha256:") :].lower()
                if len(digest) < DIGEST_PREFIX_MIN or not _HEX_RE.match(digest):
                    raise InvalidReference(text, f"a digest reference needs at least {DIGEST_PREFIX_MIN} hex digits")
                return cls(_name_in(text, name), digest=digest)
            if not target:
                raise InvalidReference(text, "nothing after '@'")
            if not _CHANNEL_RE.match(target):
                raise InvalidReference(text, f"{target!r} is not a channel name")
            return cls(_name_in(text, name), channel=target)
        if ":" in raw:
            name, _, number = raw.rpartition(":")
            if not number.isdigit():
                raise InvalidReference(text, f"{number!r} is not a version number")
            return cls(_name_in(text, name), version=int(number))
        return cls(_name_in(text, raw))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.channel is not None:
            return f"{self.name}@{self.channel}"
        if self.digest is not None:
            return f"{self.name}@sha256:{self.digest}"
        return self.name


def _name_in(text: str, name: str) -> str:
    try:
        return validate_name(name)
    except InvalidName as exc:
        raise InvalidReference(text, str(exc)) from None
