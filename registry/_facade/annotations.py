"""Tags and notes on versions after their push."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property

from registry._facade._base import FacadeBase, KeyLike, RefLike, ref_of
from registry.catalog.annotations import Annotations
from registry.catalog.results import Annotated
from registry.domain.annotations import parse_tag

__all__ = ["AnnotationMethods"]


class AnnotationMethods(FacadeBase):
    @cached_property
    def _annotations(self) -> Annotations:
        return Annotations(self._records, self._identity, self._audit, self._clock)

    def tag(self, ref: RefLike, tags: Mapping[str, str] | Iterable[str], *, key: KeyLike | None = None) -> Annotated:
        """Set tags on a version: a mapping, or ``KEY=VALUE`` strings. Setting a key again records the new
        value; every change is appended and audited."""
        pairs = dict(tags) if isinstance(tags, Mapping) else dict(parse_tag(t) for t in tags)
        checked = dict(parse_tag(f"{k}={v}") for k, v in pairs.items())
        return self._annotations.tag(self._actor, ref_of(ref), checked, self._signer(key))

    def untag(self, ref: RefLike, keys: Iterable[str], *, key: KeyLike | None = None) -> Annotated:
        """Remove tags from a version (the removal is recorded; the earlier values stay in its history)."""
        return self._annotations.untag(self._actor, ref_of(ref), list(keys), self._signer(key))

    def note(self, ref: RefLike, text: str, *, key: KeyLike | None = None) -> Annotated:
        """Append a note to a version."""
        return self._annotations.note(self._actor, ref_of(ref), text, self._signer(key))
