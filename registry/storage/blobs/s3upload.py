"""Uploads to and downloads from the S3 blob store by presigned URLs, for ``adapters serve``.

The server holds the store's credentials; a client holds none. The server signs short-lived URLs
for exactly the requests a push or pull needs, and the bytes go between the client and the object
store directly, never through the server:

* a file up to :data:`~registry.storage.blobs.s3.MULTIPART_THRESHOLD` is one ``PUT`` to its final key
  whose URL signs ``x-amz-checksum-sha256`` (the file's own sha256): the store refuses a body that does
  not hash to the blob's name, and a request without that header;
* a larger file is a multipart upload the server starts; each part's URL signs that part's SHA-256,
  which the client sends when it asks for the URL, so a part that arrives altered is refused; the
  server completes the upload itself (from the parts the store lists, never from a client's list).

Not every S3-compatible store enforces checksums (moto, the test store, accepts any body), so
the server never relies on it: :func:`confirm_upload` re-hashes each uploaded object by reading it
from the store (ranged GETs from the store to the server, not from the client) and deletes an
object whose bytes do not hash to its name, or whose size is not the one announced, before any
version may name it. A multipart upload is never completed over an object already at its key,
so a finished blob is never replaced. What remains: between a wrong object landing and its
check (or when a server dies between completing a multipart upload and re-hashing it), a push of
the same content could find it present; its pull then fails, naming the file (every pull
re-hashes), never silently, and ``adapters fsck`` on the server host finds it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import Any

from registry._io import CHUNK_SIZE
from registry.errors import InvalidInput, StorageError
from registry.storage.blobs.s3 import MULTIPART_THRESHOLD, PART_SIZE, S3BlobStore

__all__ = [
    "URL_LIFETIME_S",
    "complete_multipart",
    "confirm_upload",
    "is_present",
    "part_size_for",
    "presign_get",
    "presign_part",
    "presign_put",
    "start_multipart",
]

#: How long a presigned URL stays valid (seconds): long enough for one part or one file on a slow link.
URL_LIFETIME_S = 3600
_MAX_PARTS = 10_000


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def part_size_for(size: int) -> int:
    """The part size of a multipart upload of ``size`` bytes (as the embedded push chooses it)."""
    return max(PART_SIZE, -(-size // _MAX_PARTS))


def presign_put(store: S3BlobStore, sha256: str, size: int) -> dict[str, Any]:
    """A single PUT of the whole file to its final key, its checksum signed."""
    checksum = _b64(sha256)
    with store._errors("sign an upload of", store.key(sha256), writing=True):
        url = store.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": store.bucket,
                "Key": store.key(sha256),
                "ChecksumSHA256": checksum,
                "ContentLength": size,
            },
            ExpiresIn=URL_LIFETIME_S,
        )
    return {"via": "s3", "url": url, "headers": {"x-amz-checksum-sha256": checksum}}


def start_multipart(store: S3BlobStore, sha256: str, size: int) -> dict[str, Any]:
    """Start a multipart upload to the blob's key (SHA-256 per part); the client asks for part URLs."""
    key = store.key(sha256)
    with store._errors("start a multipart upload of", key, writing=True):
        upload_id = str(
            store.client.create_multipart_upload(Bucket=store.bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
        )
    return {"via": "s3-multipart", "upload_id": upload_id, "part_size": part_size_for(size)}


def presign_part(
    store: S3BlobStore, sha256: str, size: int, upload_id: str, number: int, part_sha256: str
) -> dict[str, Any]:
    """The URL of one part, its SHA-256 signed (the store refuses other bytes)."""
    part = part_size_for(size)
    count = -(-size // part)
    if not 1 <= number <= count:
        raise InvalidInput(f"part {number} is outside the {count} parts of a {size:,}-byte upload")
    length = min(part, size - (number - 1) * part)
    key = store.key(sha256)
    checksum = _b64(part_sha256)
    with store._errors("sign a part upload of", key, writing=True):
        url = store.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": store.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
                "ChecksumSHA256": checksum,
                "ContentLength": length,
            },
            ExpiresIn=URL_LIFETIME_S,
        )
    return {"url": url, "headers": {"x-amz-checksum-sha256": checksum}, "length": length}


def _abort(store: S3BlobStore, key: str, upload_id: str) -> None:
    with contextlib.suppress(Exception):  # gone already, or left for `adapters gc`
        store.client.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload_id)


def complete_multipart(store: S3BlobStore, sha256: str, size: int, upload_id: str) -> bool:
    """Complete an upload from the parts the store lists (every part but the last of the agreed size,
    together ``size`` bytes); False (and the upload aborted) when the blob is at its key already."""
    key = store.key(sha256)
    if store.size(sha256) == size:
        _abort(store, key, upload_id)
        return False
    part = part_size_for(size)
    count = -(-size // part)
    with store._errors("list the parts of", key, writing=True):
        listed = [
            p
            for page in store.client.get_paginator("list_parts").paginate(
                Bucket=store.bucket, Key=key, UploadId=upload_id
            )
            for p in page.get("Parts", ())
        ]
    numbers = [int(p["PartNumber"]) for p in listed]
    sizes = [int(p["Size"]) for p in listed]
    expected = [min(part, size - (n - 1) * part) for n in range(1, count + 1)]
    if numbers != list(range(1, count + 1)) or sizes != expected:
        _abort(store, key, upload_id)
        raise InvalidInput(
            f"the multipart upload of blob {sha256} holds parts {numbers[:5]}{'…' if len(numbers) > 5 else ''} "
            f"({sum(sizes):,} bytes), not the {count} parts of {size:,} bytes it was started for; it was aborted "
            "and nothing was kept. Push again"
        )
    parts = [{"PartNumber": int(p["PartNumber"]), "ETag": p["ETag"]} for p in listed]
    for entry, p in zip(parts, listed, strict=True):
        if p.get("ChecksumSHA256"):
            entry["ChecksumSHA256"] = p["ChecksumSHA256"]
    with store._errors("complete the multipart upload of", key, writing=True):
        store.client.complete_multipart_upload(
            Bucket=store.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    return True


def confirm_upload(store: S3BlobStore, sha256: str, size: int) -> None:
    """Re-hash the object a client uploaded, reading it from the store; delete it unless it is ``size``
    bytes hashing to ``sha256`` (then :class:`InvalidInput`: nothing is kept)."""
    found_size = store.size(sha256)
    if found_size is None:
        raise InvalidInput(
            f"blob {sha256} is not in the blob store {store.url}: its upload did not arrive (or its URL expired); "
            "push again"
        )
    # one streamed GET, read in chunks: no more memory than a chunk, and a store that re-reads an object for
    # every ranged GET (moto) reads it once
    h = hashlib.sha256()
    done = 0
    key = store.key(sha256)
    with store._errors("read", key), store.open(sha256) as stream:
        while chunk := stream.read(CHUNK_SIZE):
            h.update(chunk)
            done += len(chunk)
    if done != size or found_size != size or h.hexdigest() != sha256:
        with contextlib.suppress(StorageError):
            store.delete([sha256])
        raise InvalidInput(
            f"the upload of blob {sha256} ({size:,} bytes) holds {done:,} bytes hashing to {h.hexdigest()}; it "
            "was deleted and nothing was kept. Push again (the file changed while it was pushed, or it was "
            "altered on the way)"
        )


def is_present(store: S3BlobStore, sha256: str, size: int) -> bool:
    """Whether the blob is at its key with ``size`` bytes and known to hash to its name; an object that
    does not is deleted (False).

    A store that recorded the object's SHA-256 (S3 does, for a ``PUT`` that carried one) answers from
    a ``HEAD``; an object above the multipart threshold was completed by a server that checked it, or
    by an embedded push; any other (a presigned ``PUT`` to a store that keeps no checksum, whose
    client never asked the server to confirm it) is re-hashed from the store first.
    """
    from botocore.exceptions import ClientError

    key = store.key(sha256)
    with store._errors("read", key):
        try:
            head = store.client.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
    if int(head["ContentLength"]) != size:
        return False
    if is_multipart(size):
        return True
    recorded = head.get("ChecksumSHA256")
    if recorded and "-" not in str(recorded) and recorded == _b64(sha256):
        return True
    try:
        confirm_upload(store, sha256, size)
    except InvalidInput:
        return False
    return True


def presign_get(store: S3BlobStore, sha256: str) -> dict[str, Any]:
    """A GET of the blob (ranges allowed), valid for :data:`URL_LIFETIME_S`."""
    with store._errors("sign a download of", store.key(sha256)):
        url = store.client.generate_presigned_url(
            "get_object", Params={"Bucket": store.bucket, "Key": store.key(sha256)}, ExpiresIn=URL_LIFETIME_S
        )
    return {"via": "s3", "url": url, "headers": {}}


def is_multipart(size: int) -> bool:
    return size > MULTIPART_THRESHOLD
