"""Blob stores: the content-addressed byte store, one implementation per URL scheme.

``open_blob_store(url)`` picks the implementation: a directory path or ``file://`` URL is a
:class:`~registry.storage.blobs.local.LocalBlobStore`. The contract every store keeps is
:class:`~registry.storage.blobs.base.BlobStore`.
"""

from __future__ import annotations

import os

from registry.errors import StorageError
from registry.storage.blobs.base import BlobInfo, BlobStore, StoredBlob

__all__ = ["BlobInfo", "BlobStore", "StoredBlob", "open_blob_store"]


def open_blob_store(url: str | os.PathLike[str]) -> BlobStore:
    """The blob store at ``url``: a directory path or a ``file://`` URL."""
    text = os.fspath(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        from registry.storage.blobs.local import LocalBlobStore

        return LocalBlobStore(text)
    if scheme == "file":
        from registry.storage.blobs.local import LocalBlobStore

        return LocalBlobStore(rest)
    raise StorageError(
        f"blob store {text!r}: the scheme {scheme!r} is not supported; give a directory path or a file:// URL "
        "(ADAPTERS_STORE)"
    )
