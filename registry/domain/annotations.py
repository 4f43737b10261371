"""Tags and notes: what people add to a version after its push.

The manifest (description included) is immutable; tags and notes are later records, appended and
audited like every fact. A tag is a ``key=value`` pair; setting a key again records a new value,
``untag`` records its removal, and the tags of a version are the fold of those changes. A note is
free text, appended and never edited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from registry.errors import InvalidInput

__all__ = [
    "MAX_NOTE",
    "MAX_TAG_VALUE",
    "NoteRecord",
    "TagChange",
    "current_tags",
    "parse_tag",
    "validate_note",
    "validate_tag_key",
]

#: A tag key: letters, digits and ``. _ - / :``, starting with a letter or digit (``team``, ``jira:ticket``).
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}")
MAX_TAG_VALUE = 1024
MAX_NOTE = 10_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class TagChange:
    """A tag set (``value``) or removed (``value`` None) on a version."""

    key: str
    value: str | None
    at: str
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "at": self.at, "by": self.by}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TagChange:
        return cls(d["key"], d.get("value"), d["at"], d["by"])


@dataclass(frozen=True)
class NoteRecord:
    text: str
    at: str
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "at": self.at, "by": self.by}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NoteRecord:
        return cls(d["text"], d["at"], d["by"])


def validate_tag_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidInput(
            f"invalid tag key {key!r}: a key is 1-128 letters, digits and . _ - / :, starting with a letter or "
            "digit (e.g. team, jira:ticket)"
        )
    return key


def _printable(text: str, what: str, limit: int, allow_newlines: bool) -> str:
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text)} characters; at most {limit} are kept")
    bad = _CONTROL.search(text) or (None if allow_newlines else re.search(r"[\n\t]", text))
    if bad:
        raise InvalidInput(
            f"{what} holds the control character {bad.group()!r} at position {bad.start()}; remove it "
            "(control and bidirectional-override characters could disguise what a reviewer reads)"
        )
    return text


def parse_tag(text: str) -> tuple[str, str]:
    """``key=value`` as (key, value)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"a tag is KEY=VALUE, got {text!r} (to remove a tag: adapters untag REF KEY)")
    value = value.strip()
    if not value:
        raise InvalidInput(f"tag {key!r} has an empty value; to remove it: adapters untag REF {key}")
    return validate_tag_key(key.strip()), _printable(value, f"the value of tag {key!r}", MAX_TAG_VALUE, False)


def validate_note(text: str) -> str:
    if not text.strip():
        raise InvalidInput("a note needs some text")
    return _printable(text, "the note", MAX_NOTE, True)


def current_tags(changes: Iterable[TagChange]) -> dict[str, str]:
    """The tags after ``changes`` (oldest first), by key in sorted order."""
    tags: dict[str, str] = {}
    for c in changes:
        if c.value is None:
            tags.pop(c.key, None)
        else:
            tags[c.key] = c.value
    return dict(sorted(tags.items()))
