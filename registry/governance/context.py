"""The one place a policy's view of a version is built.

Governance (approve, reject, release), ``adapters policy check`` and the audit report all
evaluate policies against a :class:`~registry.domain.policy.PolicyContext`; they get it from
:func:`build_context` (given facts already loaded, as the report loads them in batches) or
:func:`load_context` (which loads them for one version), so the three cannot see a version
differently: the same evals, verifications, approvals with their signatures checked, channels
released to, the author's key and the channel asked about.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache

from registry.domain.adapterdir import AdapterContents
from registry.domain.records import ApprovalRecord, ChannelMove
from registry.domain.rules import PolicyContext
from registry.domain.state import released_channels
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, Manifest
from registry.identity import Identity, KeyRing
from registry.storage.records import Records, StoredVersion

__all__ = ["build_context", "grantors_of", "load_context"]


def build_context(
    version: StoredVersion,
    manifest: Manifest,
    *,
    evals: Sequence[EvalRecord],
    verifications: Sequence[VerificationReport],
    approvals: Sequence[ApprovalRecord],
    adapter_moves: Sequence[ChannelMove],
    author_key: str | None,
    keyring: KeyRing,
    channel: str | None = None,
    grantors: Mapping[str, frozenset[str]] | None = None,
    adapter: Callable[[Manifest], AdapterContents | None] | None = None,
) -> PolicyContext:
    """A version's policy context from its records (approvals' signatures are checked here). ``adapter`` reads
    a version's config and tensor headers from its stored blobs; it is called only when a rule needs them
    (the ``serving`` rule), and at most once."""
    return PolicyContext(
        ref=version.ref,
        manifest=manifest,
        author_key=author_key,
        evals=tuple(evals),
        verifications=tuple(verifications),
        approvals=keyring.approvals(approvals, version.ref, version.digest),
        released_to=tuple(sorted(released_channels(adapter_moves, version.number))),
        channel=channel,
        grantors=grantors or {},
        adapter=cache(lambda: adapter(manifest)) if adapter is not None else None,
    )


def grantors_of(records: Records) -> dict[str, frozenset[str]]:
    """Each user -> everyone who created their account, granted them a role or registered their key (the
    ``approvals.independent_of_author`` rule reads it)."""
    out: dict[str, set[str]] = {}
    for u in records.users():
        out.setdefault(u.name, set()).add(u.created_by)
    for g in records.grants():
        out.setdefault(g.user, set()).add(g.granted_by)
    for k in records.keys():  # noqa: SIM118 (registered keys, not a mapping)
        out.setdefault(k.user, set()).add(k.added_by)
    return {user: frozenset(who - {user}) for user, who in out.items()}


def load_context(
    records: Records,
    version: StoredVersion,
    channel: str | None = None,
    adapter: Callable[[Manifest], AdapterContents] | None = None,
) -> PolicyContext:
    """:func:`build_context` for one version, loading its records."""
    manifest = version.manifest()
    ids = [version.id]
    author = Identity.key(records, manifest.created_by)
    return build_context(
        version,
        manifest,
        evals=records.evals(ids).get(version.id, []),
        verifications=records.verifications(ids).get(version.id, []),
        approvals=records.approvals(ids).get(version.id, []),
        adapter_moves=records.moves([version.adapter_id]),
        author_key=author.fingerprint if author else None,
        keyring=Identity.keyring(records),
        channel=channel,
        grantors=grantors_of(records),
        adapter=adapter,
    )
