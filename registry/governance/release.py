"""Release with a merged checkpoint: merge first, record the release only once the checkpoint is complete.

The release's checks run read-only before the merge (a refused release costs no merge), the
merged directory is written outside the write lock, and the release is recorded with the merged
files' sha256, the base fingerprint, the method and the dtype. If the final checks refuse (the
version changed state meanwhile), the merged directory is removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._io import Progress
from registry.catalog.resolve import resolve
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.refs import Ref
from registry.governance.channels import Channels
from registry.governance.results import ActionResult
from registry.identity import Identity
from registry.storage.records import RecordStore

if TYPE_CHECKING:
    from registry.merge.results import MergeOptions, MergeResult
    from registry.merge.service import Merger

__all__ = ["concrete", "release_merged"]


def concrete(store: RecordStore, identity: Identity, actor: Actor, ref: Ref) -> Ref:
    """``NAME:N`` for any reference (as ``actor`` sees it), so that one operation sees one version throughout."""
    with store.read() as records:
        found = resolve(records, ref, identity.access(records, actor))
    return Ref(ref.name, version=found.number)


def release_merged(
    channels: Channels,
    merger: Merger,
    actor: Actor,
    ref: Ref,
    channel: str,
    signer: signing.Signer | None,
    reason: str | None,
    base: str | None,
    out: Path,
    options: MergeOptions,
    progress: Progress | None = None,
) -> ActionResult:
    """Merge ``ref`` into ``base`` at ``out``, then release it to ``channel`` with the merge recorded."""
    pinned = concrete(channels.store, channels.g.identity, actor, ref)
    target = Path(out).expanduser().absolute()
    made: list[MergeResult] = []

    def prepare() -> dict[str, Any]:
        result = merger.merge(actor, pinned, base, target, options, progress)
        made.append(result)
        return {**result.release_details(), "warnings": list(result.warnings)}

    def discard() -> None:
        if made:
            shutil.rmtree(target, ignore_errors=True)

    return channels.release(actor, pinned, channel, signer, reason, prepare=prepare, discard=discard)
