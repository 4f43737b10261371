"""Keeping the stores sound: fsck."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry._facade._base import FacadeBase

if TYPE_CHECKING:
    from registry.maintenance.results import FsckResult

__all__ = ["MaintenanceMethods"]


class MaintenanceMethods(FacadeBase):
    """Checking the blob store against the records."""

    def fsck(self, *, quick: bool = False) -> FsckResult:
        """Check that every blob a version references is in the store with its recorded size and (unless
        ``quick``) still hashes to its name, and that every version is what was pushed. Reads only; any
        role. ``ok`` is False with each problem named (a blob with every version and file using it)."""
        from registry.maintenance.fsck import fsck

        return fsck(self._records, self._blobs, quick)
