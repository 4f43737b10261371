"""Tags and notes after push: appended, audited and signed like every governing action.

``tag`` sets keys (a key set again gets the new value), ``untag`` removes keys, ``note`` appends free
text; each is one write transaction and one audit event (``tag``, ``untag``, ``note``) that records
the rows it wrote. The description stays part of the immutable manifest: these are later records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from registry.audit.log import AuditLog
from registry.catalog.resolve import resolve
from registry.catalog.results import Annotated
from registry.domain.actor import Actor
from registry.domain.annotations import NoteRecord, TagChange, current_tags, validate_note, validate_tag_key
from registry.domain.clock import Clock
from registry.domain.refs import Ref
from registry.domain.signing import Signer
from registry.errors import InvalidInput, NotFound
from registry.identity import Identity
from registry.policies import active_policy
from registry.storage.records import Records, RecordStore, StoredVersion

__all__ = ["Annotations"]


class Annotations:
    def __init__(self, store: RecordStore, identity: Identity, audit: AuditLog, clock: Clock) -> None:
        self.store = store
        self.identity = identity
        self.audit = audit
        self.clock = clock

    def tag(self, actor: Actor, ref: Ref, tags: Mapping[str, str], signer: Signer | None = None) -> Annotated:
        """Set ``tags`` on a version (validated with :func:`registry.domain.annotations.parse_tag`)."""
        if not tags:
            raise InvalidInput("give at least one KEY=VALUE tag")
        for key in tags:
            validate_tag_key(key)
        with self.store.write() as records:
            self.identity.require(records, actor, "tag", ref.name)
            version = resolve(records, ref, self.identity.access(records, actor))
            before = current_tags(records.tag_changes([version.id]).get(version.id, ()))
            changed = {k: v for k, v in tags.items() if before.get(k) != v}
            if not changed:
                return self._annotated(records, version)
            at = self.clock()
            fields = {"action": "tag", "ref": version.ref, "digest": version.digest, "tags": dict(sorted(changed.items())),
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
            for key, value in sorted(changed.items()):
                records.insert_tag(version.id, TagChange(key, value, at, actor.name))
            self.audit.append(
                records, actor, "tag", version.ref, {"tags": dict(sorted(changed.items()))}, signed=signed
            )
            return self._annotated(records, version)

    def untag(self, actor: Actor, ref: Ref, keys: Sequence[str], signer: Signer | None = None) -> Annotated:
        """Remove tags from a version; a key it does not have is an error naming the keys it has."""
        if not keys:
            raise InvalidInput("give at least one tag KEY to remove")
        with self.store.write() as records:
            self.identity.require(records, actor, "tag", ref.name)
            version = resolve(records, ref, self.identity.access(records, actor))
            before = current_tags(records.tag_changes([version.id]).get(version.id, ()))
            missing = [k for k in keys if k not in before]
            if missing:
                have = ", ".join(before) or "no tags"
                raise NotFound(f"{version.ref} has no tag {missing[0]!r} (it has {have}); nothing removed")
            removed = sorted(dict.fromkeys(keys))
            at = self.clock()
            fields = {"action": "untag", "ref": version.ref, "digest": version.digest, "keys": removed,
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
            for key in removed:
                records.insert_tag(version.id, TagChange(key, None, at, actor.name))
            self.audit.append(records, actor, "untag", version.ref, {"keys": removed}, signed=signed)
            return self._annotated(records, version)

    def note(self, actor: Actor, ref: Ref, text: str, signer: Signer | None = None) -> Annotated:
        """Append a note to a version."""
        text = validate_note(text)
        with self.store.write() as records:
            self.identity.require(records, actor, "note", ref.name)
            version = resolve(records, ref, self.identity.access(records, actor))
            at = self.clock()
            fields = {"action": "note", "ref": version.ref, "digest": version.digest, "text": text,
                      "actor": actor.name, "at": at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
            records.insert_note(version.id, NoteRecord(text, at, actor.name))
            self.audit.append(records, actor, "note", version.ref, {"text": text}, signed=signed)
            return self._annotated(records, version)

    @staticmethod
    def _annotated(records: Records, version: StoredVersion) -> Annotated:
        return Annotated(
            ref=version.ref,
            digest=version.digest,
            tags=current_tags(records.tag_changes([version.id]).get(version.id, ())),
            notes=tuple(records.notes([version.id]).get(version.id, ())),
        )
