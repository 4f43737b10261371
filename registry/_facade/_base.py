"""What every part of the facade shares: the argument types it coerces and the attributes it uses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from registry.domain.actor import Actor
from registry.domain.clock import Clock
from registry.domain.lineage import Dataset, PushMetadata
from registry.domain.refs import Ref
from registry.domain.signing import Signer
from registry.storage.records import RecordStore

if TYPE_CHECKING:
    from registry.audit.log import AuditLog
    from registry.identity import Identity

__all__ = ["DatasetLike", "FacadeBase", "MetaLike", "PathLike", "RefLike", "ref_of"]

RefLike = str | Ref
DatasetLike = str | Mapping[str, Any] | Dataset
MetaLike = str | os.PathLike[str] | Mapping[str, Any] | PushMetadata
PathLike = str | os.PathLike[str]


def ref_of(ref: RefLike) -> Ref:
    return ref if isinstance(ref, Ref) else Ref.parse(ref)


class FacadeBase:
    """The attributes :class:`registry.Registry` sets up, as the parts of the facade see them."""

    _actor: Actor
    _clock: Clock
    _records: RecordStore
    _audit: AuditLog
    _identity: Identity

    def _signer(self, key: PathLike | None) -> Signer | None:
        raise NotImplementedError
