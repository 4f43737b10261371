"""The server's side of pushes and pulls through ``adapters serve`` (see :mod:`registry.catalog.transfer`).

A client never calls these: :class:`registry.RemoteRegistry`'s ``push`` and ``pull`` do, through the
server's routes, each as the token's user.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from registry._facade._base import FacadeBase, RefLike, ref_of
from registry.catalog.results import PushResult

if TYPE_CHECKING:
    from registry.catalog.transfer import Transfers

__all__ = ["TransferMethods"]


class TransferMethods(FacadeBase):
    @cached_property
    def _transfers(self) -> Transfers:
        from registry.catalog.transfer import Transfers

        return Transfers(self._catalog, self.settings.max_blob_bytes)

    def missing_blobs(self, blobs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Of ``blobs`` (``{"sha256", "size"}`` each), those the store lacks, each with how to upload it
        (``{"via": "server"}``, or presigned S3 requests); refused unless the actor may push."""
        return self._transfers.missing(self._actor, blobs)

    def receive_blob(self, sha256: str, size: int, chunks: Iterable[bytes]) -> dict[str, Any]:
        """Store a blob streamed in ``chunks`` (a local store), hashed as it is written; bytes that are not
        ``size`` long or do not hash to ``sha256`` are refused and nothing is kept."""
        incoming = self._transfers.receive(self._actor, sha256, size)
        try:
            for chunk in chunks:
                incoming.write(chunk)
            stored = incoming.finish()
        finally:
            incoming.abort()  # after finish(): nothing left to remove
        return {"sha256": stored.sha256, "size": stored.size, "new": stored.new}

    def upload_part_url(self, sha256: str, size: int, upload_id: str, number: int, part_sha256: str) -> dict[str, Any]:
        """The presigned URL of part ``number`` of a multipart upload to S3, its SHA-256 signed."""
        return self._transfers.part_url(self._actor, sha256, size, upload_id, number, part_sha256)

    def complete_upload(self, sha256: str, size: int, upload_id: str | None = None) -> dict[str, Any]:
        """After an upload to S3: complete it (multipart) and re-hash the object, deleting a wrong one."""
        return self._transfers.complete(self._actor, sha256, size, upload_id)

    def commit_push(
        self,
        name: str,
        files: Sequence[Mapping[str, Any]],
        *,
        base: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> PushResult:
        """Record the next version of ``name`` from blobs already in the store (``files``: path, sha256 and
        size each); every adapter fact is read from the stored bytes. ``base`` is the base as the client
        resolved it, recorded as the actor's statement; ``meta`` the push's statements (quantization,
        datasets, evals, training, description, parent)."""
        return self._transfers.commit(self._actor, name, files, base, meta or {})

    def pull_plan(self, ref: RefLike, *, allow_revoked: bool = False) -> dict[str, Any]:
        """A version's files, each with where to download it (a revoked version only with ``allow_revoked``)."""
        return self._transfers.pull_plan(self._actor, ref_of(ref), allow_revoked).to_dict()

    def open_version_blob(
        self, ref: RefLike, sha256: str, *, allow_revoked: bool = False, span: tuple[int, int] | None = None
    ) -> tuple[Iterator[bytes], int]:
        """The bytes of one file of the version ``ref`` (``span``: only ``length`` bytes from ``start``), in
        chunks, and their size."""
        return self._transfers.open_blob(self._actor, ref_of(ref), sha256, allow_revoked, span)
