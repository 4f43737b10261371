"""The lifecycle, channels and policies: review, approve, release, roll back, deprecate, revoke."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._facade._base import FacadeBase, KeyLike, PathLike, RefLike, ref_of
from registry._io import Progress
from registry.domain.refs import Ref, validate_name
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.governance.results import ActionResult, ChannelState, PolicyCheck
    from registry.policies import ActivePolicy

__all__ = ["GovernanceMethods"]


class GovernanceMethods(FacadeBase):
    """Decisions under the policy in force, and the channels they move."""

    def review(self, ref: RefLike, *, comment: str | None = None, key: KeyLike | None = None) -> ActionResult:
        """Submit a draft for review."""
        return self._governance.review(self._actor, ref_of(ref), comment, self._signer(key))

    def approve(self, ref: RefLike, *, comment: str | None = None, key: KeyLike | None = None) -> ActionResult:
        """Approve under the policy in force (signed with ``key`` or ``ADAPTERS_KEY`` when it requires)."""
        return self._governance.decide(self._actor, ref_of(ref), "approve", comment, self._signer(key))

    def reject(self, ref: RefLike, *, comment: str, key: KeyLike | None = None) -> ActionResult:
        """Reject a version in review; final for that version."""
        if not comment or not comment.strip():
            raise InvalidInput("a rejection needs a comment (--comment TEXT) saying why")
        return self._governance.decide(self._actor, ref_of(ref), "reject", comment, self._signer(key))

    def release(
        self,
        ref: RefLike,
        *,
        channel: str,
        key: KeyLike | None = None,
        reason: str | None = None,
        merge: bool = False,
        base: str | None = None,
        out: PathLike | None = None,
        dtype: str | None = None,
        base_precision: str = "original",
        allow_base_mismatch: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        merged: Mapping[str, Any] | None = None,
    ) -> ActionResult:
        """Point ``channel`` at the version if the channel's policy allows it.

        With ``merge=True`` the adapter is merged into ``base`` (see :meth:`merge`) and written to
        ``out`` first; the release is recorded only once that directory is complete, with the merged
        files' sha256, the base fingerprint, the method and the dtype. ``merged``: the record of a merge
        that already ran elsewhere (a client's, through the server), checked and recorded with the release.
        """
        if merged is not None:  # a merge that ran where the base is (``release --merge`` through the server)
            return self._release_submitted(ref_of(ref), channel, key, reason, merged)
        if not merge:
            return self._channels.release(self._actor, ref_of(ref), channel, self._signer(key), reason)
        if out is None:
            raise InvalidInput("a release with --merge needs --out DIR for the merged checkpoint")
        from registry.governance.release import release_merged
        from registry.merge.results import MergeOptions

        options = MergeOptions(dtype, base_precision, allow_base_mismatch, force)
        return release_merged(
            self._channels, self._merger, self._actor, ref_of(ref), channel, self._signer(key), reason, base,
            Path(out), options, progress,
        )  # fmt: skip

    def would_release(self, ref: RefLike, *, channel: str, signed: bool) -> bool:
        """The release's checks, read-only, before a merge: True when it would move the channel, False when the
        channel already points to the version; a refusal is recorded and raised as the release's would be."""
        return self._channels.would_release(self._actor, ref_of(ref), channel, signed)

    def _release_submitted(
        self, ref: Ref, channel: str, key: KeyLike | None, reason: str | None, merged: Mapping[str, Any]
    ) -> ActionResult:
        from registry.catalog.resolve import resolve
        from registry.merge.results import submitted_merge

        if ref.version is None:
            raise InvalidInput(f"a merged release names the exact version it merged (NAME:N), not {ref}")
        with self._records.read() as records:
            version = resolve(records, ref, self._identity.access(records, self._actor))
        details = submitted_merge(merged, version.manifest().base.fingerprint)
        return self._channels.release(
            self._actor, ref, channel, self._signer(key), reason, prepare=lambda: details
        )  # fmt: skip

    def rollback(
        self,
        name: str,
        *,
        channel: str,
        to: int | None = None,
        key: KeyLike | None = None,
        reason: str | None = None,
    ) -> ActionResult:
        """Move ``channel`` back to the version it pointed to before (or to version ``to``)."""
        return self._channels.rollback(self._actor, validate_name(name), channel, to, self._signer(key), reason)

    def deprecate(self, ref: RefLike, *, reason: str | None = None, key: KeyLike | None = None) -> ActionResult:
        return self._governance.deprecate(self._actor, ref_of(ref), reason, self._signer(key))

    def revoke(self, ref: RefLike, *, reason: str, key: KeyLike | None = None) -> ActionResult:
        """Revoke a version: it is refused by pull and can never be a channel's target again."""
        return self._governance.revoke(self._actor, ref_of(ref), reason, self._signer(key))

    def channels(self, name: str) -> list[ChannelState]:
        """Each channel of an adapter: its current version and its full history."""
        return self._channels.channels(self._actor, validate_name(name))

    def set_policy(self, path: PathLike, *, channel: str | None = None, key: KeyLike | None = None) -> ActivePolicy:
        """Make a policy active for the registry, or for one channel: a YAML file's path, or a built-in
        policy's name (``default``, ``regulated``). Admins only."""
        return self._policies.set(
            self._actor, path if isinstance(path, str) else Path(path), channel, self._signer(key)
        )

    def set_policy_document(
        self, content: str, *, source: str, channel: str | None = None, key: KeyLike | None = None
    ) -> ActivePolicy:
        """As :meth:`set_policy`, for a policy's text read elsewhere (a server: the client read the file)."""
        return self._policies.set(self._actor, source, channel, self._signer(key), document=(content, source))

    def policy(self, *, channel: str | None = None) -> ActivePolicy:
        """The policy in force (for a channel: its own, else the registry's, else the built-in default)."""
        return self._policies.show(channel)

    def check_policy(self, ref: RefLike, *, channel: str | None = None) -> PolicyCheck:
        """Every rule of the policy in force against a version (``channel``: as if releasing there)."""
        return self._governance.check(self._actor, ref_of(ref), channel)
