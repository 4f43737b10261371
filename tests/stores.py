"""Reaching into a test registry's blob store from outside, as an attacker or a failing disk would:
the same helpers for a local directory and an S3 bucket (through boto3, not through our code)."""

from __future__ import annotations

import os
from typing import Any


def _store(reg: Any) -> Any:
    return reg._blobs


def is_s3(reg: Any) -> bool:
    return type(_store(reg)).__name__ == "S3BlobStore"


def blob_names(reg: Any) -> set[str]:
    """The sha256 of every blob in the store, listed by the storage itself."""
    store = _store(reg)
    if is_s3(reg):
        import boto3

        client = boto3.client("s3")
        names = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=store.prefix):
            names |= {obj["Key"].rsplit("/", 1)[-1] for obj in page.get("Contents", ())}
        return names
    top = store.root / "sha256"
    return {p.name for p in top.rglob("*") if p.is_file()} if top.exists() else set()


def overwrite_blob(reg: Any, sha256: str, data: bytes) -> None:
    """Replace a blob's bytes in place (its name no longer matches them)."""
    store = _store(reg)
    if is_s3(reg):
        import boto3

        boto3.client("s3").put_object(Bucket=store.bucket, Key=store.key(sha256), Body=data)
        return
    path = store.path(sha256)
    os.chmod(path, 0o644)
    path.write_bytes(data)


def read_blob(reg: Any, sha256: str) -> bytes:
    store = _store(reg)
    if is_s3(reg):
        import boto3

        return bytes(boto3.client("s3").get_object(Bucket=store.bucket, Key=store.key(sha256))["Body"].read())
    return bytes(store.path(sha256).read_bytes())


def remove_blob(reg: Any, sha256: str) -> None:
    store = _store(reg)
    if is_s3(reg):
        import boto3

        boto3.client("s3").delete_object(Bucket=store.bucket, Key=store.key(sha256))
        return
    store.path(sha256).unlink()
