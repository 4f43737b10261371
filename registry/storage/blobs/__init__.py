"""Blob stores: the content-addressed byte store, one implementation per URL scheme.

``open_blob_store(url)`` picks the implementation: a directory path or ``file://`` URL is a
:class:`~registry.storage.blobs.local.LocalBlobStore`, ``s3://BUCKET[/PREFIX]`` an
:class:`~registry.storage.blobs.s3.S3BlobStore` (boto3 is imported on its first request). The contract every store keeps is
:class:`~registry.storage.blobs.base.BlobStore`.
"""

from __future__ import annotations

import os

from registry.errors import StorageError
from registry.storage.blobs.base import BlobInfo, BlobStore, PendingUpload, StoredBlob

__all__ = ["BlobInfo", "BlobStore", "PendingUpload", "StoredBlob", "open_blob_store"]


def open_blob_store(url: str | os.PathLike[str]) -> BlobStore:
    """The blob store at ``url``: a directory path, a ``file://`` URL or ``s3://BUCKET[/PREFIX]``."""
    text = os.fspath(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        from registry.storage.blobs.local import LocalBlobStore

        return LocalBlobStore(text)
    if scheme == "file":
        from registry.storage.blobs.local import LocalBlobStore

        return LocalBlobStore(rest)
    if scheme == "s3":
        from registry.storage.blobs.s3 import S3BlobStore

        return S3BlobStore(text)
    raise StorageError(
        f"blob store {text!r}: the scheme {scheme!r} is not supported; give a directory path, a file:// URL or s3://BUCKET[/PREFIX] "
        "(ADAPTERS_STORE)"
    )
