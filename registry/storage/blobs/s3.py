"""The blob store on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, GCS's S3 interface).

``s3://BUCKET[/PREFIX]`` keeps each blob at ``PREFIX/sha256/ab/<hex>``, the local layout, so a
store copies between a directory and a bucket with ordinary tools (``aws s3 sync``, ``rclone``).
The endpoint and credentials come from the standard AWS chain, read by boto3 itself:
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``AWS_REGION``.

How each operation keeps the blob-store contract:

* **put** hashes the file once, asks whether the key exists with that size (then nothing is
  sent), and otherwise uploads straight to the final key: one ``PutObject`` carrying the file's
  SHA-256 for files up to :data:`MULTIPART_THRESHOLD`, else a multipart upload whose parts go up
  in parallel, each carrying its own SHA-256, so the server refuses a part that arrives altered.
  An object appears under its key only when complete (S3 never shows a half-written object); a
  multipart upload that fails or is interrupted (``KeyboardInterrupt`` included) is aborted, and
  one left by a killed process is listed by :meth:`S3BlobStore.pending_uploads` for
  ``adapters gc`` to remove.
* **export** streams the object into a new local file, hashing what it writes; large objects are
  fetched with parallel ranged GETs and hashed in order.
* **read_range** is one ranged GET: a safetensors header costs a few kilobytes, never the weights.
  A range past the object's end gives no bytes (S3's ``InvalidRange``), as a file would.

The client is created on first use, so commands that never read blobs (``ls``, ``show``) never
import boto3 nor contact the endpoint. Every failure is a :class:`StorageError` that names the
endpoint, bucket and key, and how to fix it (or :class:`BlobMissing` for an absent blob).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from registry._io import CHUNK_SIZE, FILE_MODE, Progress, hash_file, pwrite_all
from registry.errors import BlobMissing, IntegrityError, StorageError
from registry.storage.blobs.base import BlobInfo, PendingUpload, StoredBlob, blob_key
from registry.storage.blobs.s3client import (
    CREDENTIAL_SOURCES,
    CountingStream,
    S3Stats,
    in_order,
    make_client,
    parse_s3_url,
    sha_of,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = ["MULTIPART_THRESHOLD", "PART_SIZE", "S3BlobStore", "parse_s3_url"]

#: Files larger than this go up as a multipart upload (and come down as parallel ranged GETs).
MULTIPART_THRESHOLD = 64 << 20
#: The size of each part (raised for files so large that 10,000 parts would not hold them).
PART_SIZE = 16 << 20
_MAX_PARTS = 10_000
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
_T = TypeVar("_T")

_ENDPOINT_VARS = "AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (or endpoint_url in the AWS profile)"
_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_CORRUPTED = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}


class S3BlobStore:
    """Blobs as objects in a bucket, named by their sha256 under an optional prefix."""

    def __init__(self, url: str, client: BaseClient | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client = client
        self._lock = threading.Lock()
        self.stats = S3Stats()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"

    # -- the client and its errors --------------------------------------------------------

    @property
    def client(self) -> BaseClient:
        with self._lock:
            if self._client is None:
                self._client = make_client()
            if not getattr(self._client, "_adapters_counted", False):
                self._client.meta.events.register("before-send.s3", self._count)
                self._client._adapters_counted = True
            return self._client

    def _count(self, request: Any = None, **kwargs: Any) -> None:
        context = getattr(request, "context", None) or {}
        self.stats.count(str(context.get("operation_name") or kwargs.get("event_name", "?").rsplit(".", 1)[-1]))

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    def key(self, sha256: str) -> str:
        """The object key of a blob: ``PREFIX/sha256/ab/ab...``."""
        return self.prefix + blob_key(sha256)

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key else self.url

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None = None, writing: bool = False) -> Iterator[None]:
        """Turn botocore's exceptions into errors that name the store, the key and the way out."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action, key, writing) from None
        except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError) as exc:
            raise StorageError(
                f"cannot reach the S3 endpoint {self._endpoint_or_default()} for the blob store {self.url} "
                f"({action}: {exc}); check that the object store is running and that {_ENDPOINT_VARS} names it"
            ) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise StorageError(
                f"no AWS credentials for the blob store {self.url}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE"
            ) from None
        except BotoCoreError as exc:
            raise StorageError(f"the blob store {self.url} failed to {action} ({exc})") from None

    def _endpoint_or_default(self) -> str:
        try:
            return self.endpoint
        except Exception:
            return "(the AWS default)"

    def _client_error(self, exc: Any, action: str, key: str | None, writing: bool) -> RegistryLikeError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        where = self._where(key)
        if code == "NoSuchBucket":
            return StorageError(
                f"the bucket {self.bucket!r} does not exist at {self.endpoint}; create it (for example "
                f"`aws s3 mb s3://{self.bucket}`) or point ADAPTERS_STORE at an existing bucket"
            )
        if code in _BAD_CREDENTIALS:
            return StorageError(
                f"the object store at {self.endpoint} refused the credentials from {self.credential_source()} "
                f"({code}: {error.get('Message', '')}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            )
        if code in _DENIED or status == "403":
            if writing:
                return StorageError(
                    f"the blob store {self.url} is read-only for these credentials: access denied to {action} "
                    f"{where} with credentials from {self.credential_source()}; push needs s3:PutObject on the "
                    "bucket. Nothing was stored"
                )
            return StorageError(
                f"access denied to {action} {where} with credentials from {self.credential_source()}; grant these "
                f"credentials s3:GetObject and s3:ListBucket on the bucket {self.bucket!r}, or use others (keys the "
                "store does not know are refused the same way)"
            )
        if code in _CORRUPTED:
            return IntegrityError(
                f"the object store refused {where}: the bytes it received do not match their SHA-256 ({code}); "
                "they were altered in transit. Nothing was stored under that key; push again"
            )
        return StorageError(
            f"the blob store {self.url} failed to {action} {where}: {code or status} {error.get('Message', '')}"
        )

    def credential_source(self) -> str:
        """Where boto3 found the credentials it signs with, for error messages (never the secret)."""
        try:
            creds = self.client._request_signer._credentials
        except AttributeError:
            creds = None
        method = getattr(creds, "method", None)
        if method is None:
            return "nowhere (no credentials were found)"
        text = CREDENTIAL_SOURCES.get(str(method), str(method))
        profile = os.environ.get("AWS_PROFILE")
        return f"{text}, profile {profile!r}" if profile and "profile" in text else text

    # -- asking about blobs ----------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        with self._errors("read", key):
            try:
                return dict(self.client.head_object(Bucket=self.bucket, Key=key))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return None
                raise

    def info(self, sha256: str) -> BlobInfo | None:
        head = self._head(self.key(sha256))
        if head is None:
            return None
        return BlobInfo(sha256, int(head["ContentLength"]), head["LastModified"].timestamp())

    def exists(self, sha256: str) -> bool:
        return self.info(sha256) is not None

    def size(self, sha256: str) -> int | None:
        found = self.info(sha256)
        return None if found is None else found.size

    # -- writing ---------------------------------------------------------------------------

    def put(self, src: str | os.PathLike[str], progress: Progress | None = None, label: str = "") -> StoredBlob:
        """Hash ``src`` once, then upload it to its final key unless an object of that size is there."""
        shown = label or os.fspath(src)
        sha, size = hash_file(src, progress, f"hashing {shown}" if progress else "")
        key = self.key(sha)
        present = self._head(key)
        if present is not None and int(present["ContentLength"]) == size:
            return StoredBlob(sha, size, new=False)
        if size > MULTIPART_THRESHOLD:
            self._put_multipart(src, key, size, progress, shown)
        else:
            self._put_single(src, key, sha, size)
        if progress is not None:
            progress(shown, size, size)
        landed = self._head(key)
        if landed is None or int(landed["ContentLength"]) != size:
            raise StorageError(
                f"the object store at {self.endpoint} accepted {self._where(key)} but does not show it with "
                f"{size} bytes afterwards; nothing was recorded. Check the store, then push again"
            )
        return StoredBlob(sha, size, new=True)

    def _put_single(self, src: str | os.PathLike[str], key: str, sha: str, size: int) -> None:
        with open(src, "rb") as body, self._errors("upload", key, writing=True):
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode(),
            )
        self.stats.wrote(size)

    def _put_multipart(
        self, src: str | os.PathLike[str], key: str, size: int, progress: Progress | None, label: str
    ) -> None:
        part_size = max(PART_SIZE, -(-size // _MAX_PARTS))
        count = -(-size // part_size)
        with self._errors("start a multipart upload of", key, writing=True):
            upload_id = str(
                self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
            )
        try:
            fd = os.open(src, os.O_RDONLY)
            try:

                def send(number: int) -> dict[str, Any]:
                    offset = (number - 1) * part_size
                    data = os.pread(fd, min(part_size, size - offset), offset)
                    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    with self._errors("upload a part of", key, writing=True):
                        reply = self.client.upload_part(
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=number,
                            Body=data,
                            ContentLength=len(data),
                            ChecksumSHA256=checksum,
                        )
                    self.stats.wrote(len(data))
                    return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumSHA256": checksum, "_n": len(data)}

                parts = []
                done = 0
                for part in in_order(send, range(1, count + 1)):
                    done += int(part.pop("_n"))
                    parts.append(part)
                    if progress is not None:
                        progress(label, done, size)
            finally:
                os.close(fd)
            with self._errors("complete the multipart upload of", key, writing=True):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:  # a failure, a dropped connection, Ctrl-C: leave no upload behind
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    # -- reading ---------------------------------------------------------------------------

    def _get(self, key: str, sha256: str, byte_range: str | None = None) -> Any:
        from botocore.exceptions import ClientError

        with self._errors("read", key):
            try:
                args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
                if byte_range:
                    args["Range"] = byte_range
                return self.client.get_object(**args)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in _MISSING:
                    raise BlobMissing(sha256, self.url) from None
                if byte_range and code == "InvalidRange":
                    return None
                raise

    def open(self, sha256: str) -> BinaryIO:
        reply = self._get(self.key(sha256), sha256)
        return CountingStream(reply["Body"], self.stats)  # type: ignore[return-value]

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        key = self.key(sha256)
        reply = self._get(key, sha256, f"bytes={start}-{start + length - 1}")
        if reply is None:  # the range starts at or past the object's end: no bytes, as from a file
            return b""
        with self._errors("read", key):
            data = bytes(reply["Body"].read())
        self.stats.read(len(data))
        return data

    def export(self, sha256: str, dst: Path, progress: Progress | None = None, label: str = "") -> tuple[str, int]:
        """Write the object to a new file ``dst``; return the sha256 and size of what was written."""
        key = self.key(sha256)
        head = self._head(key)
        if head is None:
            raise BlobMissing(sha256, self.url)
        size = int(head["ContentLength"])
        shown = label or dst.name
        fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            h = hashlib.sha256()
            done = 0
            with self._errors("read", key):
                for chunk in self._chunks(key, sha256, size):
                    pwrite_all(fd, chunk, done)
                    h.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(shown, done, size)
            os.fsync(fd)
            return h.hexdigest(), done
        finally:
            os.close(fd)

    def _chunks(self, key: str, sha256: str, size: int) -> Iterator[bytes]:
        """The object's bytes in order: one streamed GET, or parallel ranged GETs for a large object."""
        if size <= MULTIPART_THRESHOLD:
            with self.open(sha256) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    yield chunk
            return

        def fetch(start: int) -> bytes:
            data = self.read_range(sha256, start, min(PART_SIZE, size - start))
            if not data:
                raise IntegrityError(f"{self._where(key)} ended early: it is shorter than its recorded {size} bytes")
            return data

        yield from in_order(fetch, range(0, size, PART_SIZE))

    # -- listing and removing --------------------------------------------------------------

    def iter_blobs(self) -> Iterator[BlobInfo]:
        top = self.prefix + "sha256/"
        with self._errors("list", top):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=top)
            for page in pages:
                for obj in page.get("Contents", ()):
                    sha = sha_of(str(obj["Key"])[len(top) :])
                    if sha is not None:
                        yield BlobInfo(sha, int(obj["Size"]), obj["LastModified"].timestamp())

    def delete(self, sha256s: Iterable[str]) -> None:
        """Remove blobs (``adapters gc``), up to 1,000 per request; absent ones are not an error."""
        keys = [self.key(s) for s in sha256s]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with self._errors("delete", batch[0], writing=True):
                reply = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    f"the blob store {self.url} did not delete {len(errors)} of {len(batch)} blobs, e.g. "
                    f"{self._where(first.get('Key'))}: {first.get('Code')} {first.get('Message', '')}"
                )

    def pending_uploads(self) -> Iterator[PendingUpload]:
        """Multipart uploads under the store's prefix that were started and neither completed nor aborted."""
        top = self.prefix + "sha256/"
        with self._errors("list the multipart uploads in", top):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=top)
            for page in pages:
                for up in page.get("Uploads", ()):
                    key, upload_id = str(up["Key"]), str(up["UploadId"])
                    size = 0
                    for parts in self.client.get_paginator("list_parts").paginate(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    ):
                        size += sum(int(p["Size"]) for p in parts.get("Parts", ()))
                    yield PendingUpload(upload_id, key[len(self.prefix) :], size, up["Initiated"].timestamp())

    def abort_upload(self, upload: PendingUpload) -> None:
        key = self.prefix + upload.key
        with self._errors("abort the multipart upload of", key, writing=True):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload.id)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


RegistryLikeError = StorageError | IntegrityError
