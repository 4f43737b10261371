"""Keeping the stores sound: fsck and gc."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from registry._facade._base import FacadeBase, KeyLike
from registry.domain.durations import parse_duration
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.maintenance.gc import GarbageCollector
    from registry.maintenance.results import FsckResult, GcResult

__all__ = ["GraceLike", "MaintenanceMethods", "grace_seconds"]

GraceLike = str | int | float | timedelta


def grace_seconds(grace: GraceLike) -> int:
    """``"24h"``, ``"30m"``, ``"0s"``, a number of seconds or a timedelta, as whole seconds (never negative)."""
    if isinstance(grace, str):
        return parse_duration(grace, "grace")
    seconds = grace.total_seconds() if isinstance(grace, timedelta) else float(grace)
    if seconds < 0 or seconds != seconds:
        raise InvalidInput(
            f"grace {grace!r} is negative or not a number; give 0s for no grace at all, or 24h (the default)"
        )
    return int(seconds)


class MaintenanceMethods(FacadeBase):
    """Checking the blob store against the records, and collecting what no version uses."""

    @cached_property
    def _gc(self) -> GarbageCollector:
        from registry.maintenance.gc import GarbageCollector

        return GarbageCollector(self._records, self._blobs, self._identity, self._audit, self._clock)

    def fsck(self, *, quick: bool = False) -> FsckResult:
        """Check that every blob a version references is in the store with its recorded size and (unless
        ``quick``) still hashes to its name, and that every version is what was pushed. Reads only; any
        role. ``ok`` is False with each problem named (a blob with every version and file using it)."""
        from registry.maintenance.fsck import fsck

        return fsck(self._records, self._blobs, quick)

    def gc(self, *, grace: GraceLike = "24h", dry_run: bool = False, key: KeyLike | None = None) -> GcResult:
        """Remove the blobs no version references and the abandoned uploads, once older than ``grace``
        (``"24h"``, ``"30m"``, ``"0s"``, seconds or a timedelta). Admins only, signed with ``key`` (or
        ``ADAPTERS_KEY``) where the policy requires signatures, recorded as a ``gc`` event; a refusal is
        recorded as ``gc refused``. ``dry_run``: what would be removed; nothing is removed or recorded."""
        return self._gc.run(self._actor, grace_seconds(grace), self._signer(key), dry_run)
