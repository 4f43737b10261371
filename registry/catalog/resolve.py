"""Resolving references to stored versions, and the state each version is in.

Every lookup costs the same however many versions the registry holds: a name is found by its
unique index, a version by (adapter, number) or digest prefix, a channel by its adapter's moves,
and a state by the latest transition of the ids asked for.
"""

from __future__ import annotations

import json

from registry.domain.refs import Ref
from registry.domain.roles import Access
from registry.domain.state import channel_targets, version_state
from registry.domain.suggest import no_such_adapter, suggestions
from registry.errors import AmbiguousReference, IntegrityError, NotFound
from registry.storage.records import Records, StoredVersion

__all__ = ["adapter_id", "check_push_record", "resolve", "state_of"]


def adapter_id(records: Records, name: str, access: Access) -> int:
    """The adapter's id, or :class:`NotFound` saying how to list the adapters: also for an adapter in a
    namespace ``access`` does not see, in the same words (names do not leak)."""
    found = records.adapter_id(name) if access.sees(name) else None
    if found is None:
        raise no_such_adapter(name, [n for n in records.adapter_names() if access.sees(n)])
    return found


def resolve(records: Records, ref: Ref, access: Access) -> StoredVersion:
    """The version a reference points at: ``NAME``, ``NAME:N``, ``NAME@CHANNEL`` or ``NAME@sha256:...``,
    for a caller with ``access`` (an adapter they do not see is not found; :meth:`Access.unrestricted`
    for the registry's own lookups)."""
    aid = adapter_id(records, ref.name, access)
    if ref.version is not None:
        found = records.version(aid, ref.version)
        if found is None:
            latest = records.latest_number(aid)
            raise NotFound(
                f"adapter {ref.name!r} has no version {ref.version}; versions are 1-{latest} (adapters ls {ref.name})",
                name=ref.name,
                version=ref.version,
            )
        return found
    if ref.digest is not None:
        matches = records.versions_with_digest(aid, ref.digest)
        if not matches:
            raise NotFound(
                f"adapter {ref.name!r} has no version with digest sha256:{ref.digest}...; "
                f"`adapters ls {ref.name}` shows the digests",
                name=ref.name,
            )
        if len(matches) > 1:
            raise AmbiguousReference(str(ref), [f"{v.ref} {v.digest}" for v in matches])
        return matches[0]
    if ref.channel is not None:
        return resolve_channel(records, aid, ref.name, ref.channel)
    latest_version = records.latest_version(aid)
    if latest_version is None:
        raise NotFound(f"adapter {ref.name!r} has no versions yet; push one with `adapters push`", name=ref.name)
    return latest_version


def resolve_channel(records: Records, aid: int, name: str, channel: str) -> StoredVersion:
    targets = channel_targets(records.moves([aid]))
    move = targets.get(channel)
    if move is None:
        known = f"its channels are {', '.join(targets)}" if targets else "it has not been released to any channel"
        close = suggestions(channel, targets)
        if close:
            raise NotFound(
                f"adapter {name!r} has no channel {channel!r} ({known}); did you mean "
                + " or ".join(f"{name}@{c}" for c in close)
                + "?",
                name=name,
            )
        raise NotFound(
            f"adapter {name!r} has no channel {channel!r} ({known}); release a version with "
            f"`adapters release {name}:N --channel {channel}`",
            name=name,
        )
    found = records.version(aid, move.version)
    if found is None:  # a move always names a version of its adapter (foreign key)
        raise IntegrityError(f"{name}@{channel} points to version {move.version}, which is not recorded")
    return found


def state_of(records: Records, version: StoredVersion) -> str:
    return version_state([records.latest_transitions([version.id]).get(version.id)])


def check_push_record(records: Records, version: StoredVersion) -> None:
    """Refuse a version whose record no longer equals what its push recorded (digest and files).

    A version row rewritten in the database (its manifest pointing at other blobs, its digest
    recomputed) still hashes to its digest, so this compares it with the push event, which the
    chain protects. Costs one indexed lookup of the version's events.
    """
    push = next((e for e in records.events(subject=version.ref) if e.action == "push"), None)
    if push is None:
        raise IntegrityError(
            f"{version.ref} has no push event: its record was inserted outside the registry; it is not handed "
            "out (run `adapters audit verify`)",
            name=version.name,
            version=version.number,
        )
    recorded = json.loads(push.payload)
    manifest = version.manifest()
    files = {f.path: f.sha256 for f in manifest.files}
    if recorded.get("digest") != version.digest or recorded.get("files", files) != files:
        raise IntegrityError(
            f"{version.ref}'s record ({version.digest}) is not what its push recorded ({recorded.get('digest')}, "
            f"event {push.seq}): the database was altered; it is not handed out (run `adapters audit verify`)",
            name=version.name,
            version=version.number,
        )
