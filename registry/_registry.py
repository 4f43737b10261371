"""The facade: everything a user can do is a method of :class:`Registry`.

Each method coerces its arguments (strings to references, paths to key signers, mappings to
metadata) and makes one call into a concept package; the use cases, records and rules live there.
The methods are grouped by concept in :mod:`registry._facade`; this module sets up what they share.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace

from registry._facade._base import KeyLike, PathLike, path_of
from registry._facade.annotations import AnnotationMethods
from registry._facade.audit import AuditMethods
from registry._facade.catalog import CatalogMethods
from registry._facade.checks import CheckMethods
from registry._facade.governance import GovernanceMethods
from registry._facade.maintenance import MaintenanceMethods
from registry._facade.people import PeopleMethods
from registry._facade.tokens import TokenMethods
from registry._facade.transfer import TransferMethods
from registry.audit.keys import RegistryKeys
from registry.audit.log import AuditLog
from registry.catalog.service import Catalog
from registry.domain.actor import Actor
from registry.domain.clock import Clock, now_iso
from registry.domain.signing import KeyFileSigner, Signer
from registry.filehashes import FileHashCache
from registry.identity import Identity
from registry.settings import Settings
from registry.storage.blobs import BlobStore, open_blob_store
from registry.storage.db import Database
from registry.storage.records import RecordStore

__all__ = ["Registry"]


class Registry(
    CatalogMethods,
    CheckMethods,
    GovernanceMethods,
    PeopleMethods,
    AnnotationMethods,
    AuditMethods,
    MaintenanceMethods,
    TokenMethods,
    TransferMethods,
):
    """A registry of PEFT adapters: one metadata database and one blob store.

    >>> reg = Registry()                       # ADAPTERS_HOME / ADAPTERS_DB / ADAPTERS_STORE
    >>> reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B")
    >>> reg.pull("support-summarizer:1", "./adapter")

    ``blob_store`` replaces the store ``ADAPTERS_STORE`` names (any :class:`BlobStore`), ``clock``
    the function that gives the time records carry. The actor is ``user`` (else ``ADAPTERS_USER``);
    :meth:`acting_as` gives a view of the same registry acting as someone else.
    """

    def __init__(
        self,
        home: PathLike | None = None,
        *,
        db: str | None = None,
        store: PathLike | None = None,
        user: str | None = None,
        settings: Settings | None = None,
        blob_store: BlobStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        s = settings or Settings.from_env(home)
        if db is not None:
            s = replace(s, db_url=db)
        if store is not None:
            s = replace(s, store=os.fspath(store))
        if user is not None:
            s = replace(s, user=user)
        self.settings = s
        self._actor = Actor(s.user)
        self._clock: Clock = clock or now_iso
        self._db = Database(s.db_url)
        self._records = RecordStore(self._db)
        self._blobs: BlobStore = blob_store if blob_store is not None else open_blob_store(s.store)
        self._hashes = FileHashCache(s.cache_dir)
        self._audit = AuditLog(self._records, RegistryKeys(s.registry_key, s.home, s.state_dir), self._clock)
        self._identity = Identity(self._records, self._audit, self._clock)
        self._catalog = Catalog(self._records, self._blobs, self._hashes, self._identity, self._audit, self._clock)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hashes.close()
        self._blobs.close()
        self._db.dispose()

    @property
    def user(self) -> str:
        return self._actor.name

    @property
    def actor(self) -> Actor:
        return self._actor

    def acting_as(self, actor: Actor | str) -> Registry:
        """This registry (the same database, store and services) acting as ``actor``.

        The view shares everything with this object; close this one, not the view.
        """
        view = copy.copy(self)
        view._actor = actor if isinstance(actor, Actor) else Actor(actor)
        return view

    def check_database(self) -> None:
        """Raise unless the metadata database answers a query (a server's readiness probe)."""
        with self._records.read() as records:
            records.user_count()

    def check_store(self) -> None:
        """Raise unless the blob store answers a listing (a server's readiness probe)."""
        next(iter(self._blobs.iter_blobs()), None)

    def describe(self) -> dict[str, str]:
        """Where this registry keeps its data (passwords hidden)."""
        return {"db": self._db.redacted_url, "store": self._blobs.url, "user": self.user}

    def _signer(self, key: KeyLike | None) -> Signer | None:
        if key is not None and not isinstance(key, (str, os.PathLike)):
            return key  # a Signer already (the server's, holding a client's signature)
        path = path_of(key) or self.settings.key
        return KeyFileSigner(path) if path is not None else None
