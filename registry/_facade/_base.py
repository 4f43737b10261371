"""What every part of the facade shares: the argument types it coerces and the attributes it uses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.domain.actor import Actor
from registry.domain.clock import Clock
from registry.domain.lineage import Dataset, PushMetadata
from registry.domain.refs import Ref
from registry.domain.signing import Signer
from registry.storage.records import RecordStore

if TYPE_CHECKING:
    from registry.audit.log import AuditLog
    from registry.audit.service import Auditor
    from registry.catalog.service import Catalog
    from registry.filehashes import FileHashCache
    from registry.governance.channels import Channels
    from registry.governance.service import Governance
    from registry.identity import Identity
    from registry.identity.tokens import Tokens
    from registry.merge.service import Merger
    from registry.policies import Policies
    from registry.settings import Settings
    from registry.storage.blobs import BlobStore
    from registry.storage.db import Database
    from registry.verification.service import Verifier

__all__ = ["DatasetLike", "FacadeBase", "KeyLike", "MetaLike", "PathLike", "RefLike", "path_of", "ref_of"]

RefLike = str | Ref
DatasetLike = str | Mapping[str, Any] | Dataset
MetaLike = str | os.PathLike[str] | Mapping[str, Any] | PushMetadata
PathLike = str | os.PathLike[str]
#: A private key file, or a :class:`Signer` (the server passes one holding a client's signature).
KeyLike = PathLike | Signer


def ref_of(ref: RefLike) -> Ref:
    return ref if isinstance(ref, Ref) else Ref.parse(ref)


def path_of(value: PathLike | None) -> Path | None:
    return Path(value).expanduser() if value is not None else None


class FacadeBase:
    """The attributes :class:`registry.Registry` sets up, as the parts of the facade see them, and the
    services built on first use (``adapters ls`` and ``show`` need none of them)."""

    settings: Settings
    _actor: Actor
    _clock: Clock
    _records: RecordStore
    _db: Database
    _audit: AuditLog
    _identity: Identity
    _catalog: Catalog
    _blobs: BlobStore
    _hashes: FileHashCache

    def _signer(self, key: KeyLike | None) -> Signer | None:
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        raise NotImplementedError

    @cached_property
    def _policies(self) -> Policies:
        from registry.policies import Policies

        return Policies(self._records, self._identity, self._audit, self._clock)

    @cached_property
    def _tokens(self) -> Tokens:
        from registry.identity.tokens import Tokens

        return Tokens(self._records, self._audit, self._identity, self._clock)

    @cached_property
    def _verifier(self) -> Verifier:
        from registry.verification.service import Verifier

        return Verifier(self._catalog, self._hashes, self._audit, self._clock)

    @cached_property
    def _governance(self) -> Governance:
        from registry.governance.service import Governance

        catalog = self._catalog  # the serving rule reads a version's config and headers from the blob store
        return Governance(self._records, self._identity, self._policies, self._audit, self._clock, catalog.read_headers)

    @cached_property
    def _channels(self) -> Channels:
        from registry.governance.channels import Channels

        return Channels(self._governance)

    @cached_property
    def _merger(self) -> Merger:
        from registry.merge.service import Merger

        return Merger(self._catalog, self._hashes)

    @cached_property
    def _auditor(self) -> Auditor:
        from registry.audit.service import Auditor

        trust_dir = self.settings.config_dir / "trust"
        return Auditor(self._records, self._audit, self._identity, self._policies, self._blobs, self._clock, trust_dir)
