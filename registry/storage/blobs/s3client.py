"""The parts of the S3 blob store that are not the store itself: its URL, its boto3 client, counting its
requests, and fetching or sending parts in parallel, in order."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from registry.errors import IntegrityError, InvalidInput
from registry.storage.blobs.base import check_sha256

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = [
    "CREDENTIAL_SOURCES",
    "WORKERS",
    "CountingStream",
    "S3Stats",
    "in_order",
    "make_client",
    "parse_s3_url",
    "sha_of",
]

#: Parts or ranges in flight at once.
WORKERS = 8
_T = TypeVar("_T")

CREDENTIAL_SOURCES = {
    "env": "the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    "shared-credentials-file": "the shared credentials file (~/.aws/credentials)",
    "config-file": "the AWS config file (~/.aws/config)",
    "assume-role": "an assumed role (AWS profile)",
    "assume-role-with-web-identity": "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "sso": "AWS SSO (AWS profile)",
    "container-role": "the container's task role",
    "iam-role": "the instance's IAM role",
    "custom-process": "a credential_process (AWS profile)",
}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``; the prefix is empty or ends in '/'."""
    if not url.startswith("s3://"):
        raise InvalidInput(f"{url!r} is not an s3:// URL; give s3://BUCKET or s3://BUCKET/PREFIX (ADAPTERS_STORE)")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if (
        not bucket
        or any(c in bucket for c in " \\?#")
        or any(p in ("", ".", "..") for p in prefix.split("/") if prefix)
    ):
        raise InvalidInput(
            f"{url!r} is not a valid blob store URL; give s3://BUCKET or s3://BUCKET/PREFIX, e.g. "
            "s3://ml-adapters/registry (ADAPTERS_STORE)"
        )
    return bucket, f"{prefix}/" if prefix else ""


@dataclass
class S3Stats:
    """What the store asked of the server in this process (for benchmarks and `--json` output)."""

    requests: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, operation: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_operation[operation] = self.by_operation.get(operation, 0) + 1

    def read(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n

    def wrote(self, n: int) -> None:
        with self._lock:
            self.bytes_written += n


def make_client() -> BaseClient:
    """An S3 client configured from the standard AWS chain (boto3 reads every variable itself; it
    takes the region from AWS_DEFAULT_REGION, so AWS_REGION is passed on when that is unset)."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "max_pool_connections": WORKERS * 2,
        "connect_timeout": 10,
        "read_timeout": 120,
        # a checksum only where an operation needs one: ours are SHA-256, given explicitly
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        # presigned URLs (handed out by `adapters serve`) sign the checksum headers they require
        "signature_version": "s3v4",
    }
    if not os.environ.get("AWS_MAX_ATTEMPTS") and not os.environ.get("AWS_RETRY_MODE"):
        options["retries"] = {"max_attempts": 5, "mode": "standard"}
    session = boto3.session.Session()
    region = None if session.region_name else os.environ.get("AWS_REGION") or None
    return session.client("s3", region_name=region, config=Config(**options))


def sha_of(rest: str) -> str | None:
    """``ab/abcdef...`` -> the sha256, or None for a key that is not a blob's."""
    two, _, name = rest.partition("/")
    try:
        check_sha256(name)
    except IntegrityError:
        return None
    return name if name[:2] == two else None


def in_order(fn: Callable[[int], _T], items: Iterable[int], workers: int = WORKERS) -> Iterator[_T]:
    """``fn`` over ``items`` on ``workers`` threads, results yielded in order, at most ``2 * workers`` in
    flight (bounded memory). A failure cancels what has not started."""
    pending: deque[Future[_T]] = deque()
    it = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adapters-s3") as pool:
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


class CountingStream:
    """A GET's body that counts the bytes read from it (and closes the connection when done)."""

    def __init__(self, body: Any, stats: S3Stats) -> None:
        self._body = body
        self._stats = stats

    def read(self, n: int = -1) -> bytes:
        data = bytes(self._body.read(None if n < 0 else n))
        self._stats.read(len(data))
        return data

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> CountingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
