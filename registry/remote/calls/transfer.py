"""Push and pull through ``adapters serve``: the client's side (the server's is
:mod:`registry.catalog.transfer`).

Push reads and checks the adapter directory here, with the embedded push's own code
(:func:`registry.domain.adapterdir.read_adapter_dir`), resolves and fingerprints the base and the
datasets on this machine (:func:`registry.catalog.push.resolve_push_base`), hashes every file (through
the machine's file-hash cache, so a re-push hashes nothing again), asks the server which blobs
are missing, uploads only those (streamed through the server for a local store; straight to S3 by
presigned URLs, large files in parts) and commits the version last. Nothing is recorded before
the commit; run an interrupted push again and it uploads only what is still missing.

A push is not a signed action (the embedded push signs nothing either: the policy's ``signatures`` rule
covers approvals, releases and the like), so the commit is a plain request; the author is the token's
user, recorded in the push event with the token's id.

Pull asks the server for the version's files and where to fetch each, writes them into a
temporary sibling of the output directory, re-hashing every byte, and renames it into place: the
directory appears complete or not at all.

Neither side holds a file in memory: files go in chunks of :data:`registry._io.CHUNK_SIZE`, or
S3 parts of 16 MiB, a few at a time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from registry._io import (
    CHUNK_SIZE,
    FILE_MODE,
    Progress,
    check_output_dir,
    fsync_dir,
    pwrite_all,
)
from registry.catalog.results import PullResult, PushResult
from registry.domain.adapterdir import SourceFile
from registry.domain.clock import now_iso
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.versions import BaseModel, FileEntry
from registry.errors import IntegrityError, InvalidAdapter, StorageError
from registry.remote._http import API, RemoteBase

__all__ = ["TransferCalls"]

#: Downloads larger than this come as parallel ranged GETs (as the S3 store's own export does).
_RANGED = 64 << 20
_RANGE = 16 << 20
#: Parts or ranges in flight at once, each at most 16 MiB: 4 threads, 8 held at most (128 MiB).
_WORKERS = 4
#: Tries of one presigned request, and the first pause between them (doubling), for S3's transient answers.
_ATTEMPTS = 4
_BACKOFF = 0.2
_TRANSIENT = frozenset({500, 502, 503, 504})


class TransferCalls(RemoteBase):
    """Push and pull, the bytes moved in chunks."""

    def push(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        base: str | None = None,
        base_name: str | None = None,
        base_revision: str | None = None,
        allow_unverified_base: bool = False,
        quantization: str | Mapping[str, Any] | Quantization | None = None,
        datasets: Iterable[str | Mapping[str, Any] | Dataset] = (),
        evals: Mapping[str, float] | Iterable[str | Evaluation] = (),
        meta: str | os.PathLike[str] | Mapping[str, Any] | PushMetadata | None = None,
        training: Mapping[str, Any] | None = None,
        description: str | None = None,
        parent: object = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """As :meth:`registry.Registry.push`, the version recorded by the server from the uploaded bytes."""
        from registry._facade.catalog import push_metadata
        from registry.catalog.push import resolve_push_base
        from registry.datasets import resolve_dataset
        from registry.domain.adapterdir import read_adapter_dir
        from registry.domain.refs import validate_name
        from registry.filehashes import FileHashCache
        from registry.settings import Settings

        validate_name(name)
        stated = push_metadata(
            base=base, base_name=base_name, base_revision=base_revision, allow_unverified_base=allow_unverified_base,
            quantization=quantization, datasets=datasets, evals=evals, meta=meta, training=training,
            description=description, parent=str(parent) if parent is not None else None,
        )  # fmt: skip
        self._may_push()  # a refused push reads and hashes nothing
        adapter = read_adapter_dir(path)
        hashes = FileHashCache(Settings.from_env().cache_dir)
        try:
            resolved = resolve_push_base(hashes, stated, adapter, progress)
            resolved_datasets = tuple(resolve_dataset(d, hashes, progress) for d in stated.datasets)
            digests = {f.path: hashes.sha256(f.abspath, progress, f.path) for f in adapter.files}
        finally:
            hashes.close()
        files = [{"path": f.path, "sha256": digests[f.path], "size": f.size} for f in adapter.files]
        new_bytes = self._upload_missing(adapter.files, digests, progress)
        for f in adapter.files:
            st = os.stat(f.abspath)
            if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns):
                raise InvalidAdapter(
                    f"{adapter.root / f.path} changed while it was being pushed; wait until the training job has "
                    "finished writing the adapter and push again",
                    str(adapter.root / f.path),
                )
        body = {
            "name": name,
            "files": files,
            "base": resolved.base.to_dict(),
            "meta": {
                "quantization": stated.quantization.to_dict() if stated.quantization is not None else None,
                "datasets": [d.to_dict() for d in resolved_datasets],
                "evals": [e.to_dict() for e in stated.evals],
                "training": dict(stated.training) if stated.training is not None else None,
                "description": stated.description,
                "parent": stated.parent,
            },
        }
        d = self._request("POST", f"{API}/versions", json=body)
        return PushResult(
            name=str(d["name"]),
            version=int(d["version"]),
            digest=str(d["digest"]),
            size=int(d["size"]),
            files=int(d["files"]),
            new_bytes=new_bytes,
            base=BaseModel.from_dict(d["base"]),
            warnings=(*adapter.warnings, *resolved.warnings),
        )

    def _may_push(self) -> None:
        """Refused early (403, naming the roles) unless the token's user may push: ask about no blob."""
        self._request("POST", f"{API}/blobs/missing", json={"blobs": []})

    def _upload_missing(
        self, files: tuple[SourceFile, ...], digests: Mapping[str, str], progress: Progress | None
    ) -> int:
        """Upload the blobs the server says it lacks; the bytes sent."""
        wanted = {digests[f.path]: f for f in files}
        asked = [{"sha256": sha, "size": f.size} for sha, f in wanted.items()]
        missing = self._request("POST", f"{API}/blobs/missing", json={"blobs": asked})["missing"]
        sent = 0
        for m in missing:
            f = wanted[m["sha256"]]
            how = m["upload"]
            if how["via"] == "server":
                self._put_through_server(f, m["sha256"], progress)
            elif how["via"] == "s3":
                self._put_presigned(f, m["sha256"], how, progress)
            elif how["via"] == "s3-multipart":
                self._put_parts(f, m["sha256"], how, progress)
            else:
                raise StorageError(f"the server {self.url} asks for an upload this client does not know ({how['via']})")
            sent += f.size
        return sent

    def _patient(self, size: int) -> Any:
        """A timeout for a request after which the server works through ``size`` bytes (fsync, re-hashing
        from the store): the usual one, plus a second per 10 MB."""
        import httpx

        return httpx.Timeout(self._timeout, read=self._timeout + size / 10e6)

    def _put_through_server(self, f: SourceFile, sha256: str, progress: Progress | None) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(f.size)}
        self._request(
            "PUT", f"{API}/blobs/{sha256}", content=_read_chunks(f, progress), headers=headers,
            timeout=self._patient(f.size),
        )  # fmt: skip

    def _s3_request(
        self, method: str, url: str, what: str, *, body: Callable[[], Any] | None = None, **kwargs: Any
    ) -> Any:
        """One request to a presigned URL, tried again (up to :data:`_ATTEMPTS` times, backing off) when the store
        answers 500, 502, 503 or 504 or the connection fails, as S3's own SDKs do: S3 documents those answers as
        transient. ``body`` makes a fresh request body for each try (a file's chunks, read again). A presigned
        request is idempotent: the blob's key is its digest, and the server re-hashes the object before commit."""
        import httpx

        again = "Pull again" if method == "GET" else "Push again"
        for attempt in range(1, _ATTEMPTS + 1):
            last = attempt == _ATTEMPTS
            try:
                response = self._http().request(method, url, **kwargs, **({"content": body()} if body else {}))
            except httpx.TransportError as exc:
                if last:
                    raise StorageError(
                        f"the object store did not answer while trying to {what} ({type(exc).__name__}: {exc}; "
                        f"tried {_ATTEMPTS} times); the registry server {self.url} hands out its URLs, so this machine "
                        f"must reach the store too. {again}"
                    ) from None
            else:
                if response.status_code not in _TRANSIENT or last:
                    break
            time.sleep(_BACKOFF * 2 ** (attempt - 1))
        if response.status_code >= 300:
            tried = f" (tried {_ATTEMPTS} times)" if response.status_code in _TRANSIENT else ""
            raise StorageError(
                f"the object store refused to {what}: {response.status_code}{tried} {response.text[:300]}; nothing "
                f"was recorded. {again}"
            )
        return response

    def _put_presigned(self, f: SourceFile, sha256: str, how: Mapping[str, Any], progress: Progress | None) -> None:
        headers = {**how.get("headers", {}), "Content-Length": str(f.size)}
        self._s3_request(
            "PUT", how["url"], f"upload {f.path}", body=lambda: _read_chunks(f, progress), headers=headers
        )  # fmt: skip
        self._request("POST", f"{API}/blobs/{sha256}/complete", json={"size": f.size}, timeout=self._patient(f.size))

    def _put_parts(self, f: SourceFile, sha256: str, how: Mapping[str, Any], progress: Progress | None) -> None:
        from registry.storage.blobs.s3client import in_order

        part_size = int(how["part_size"])
        upload_id = str(how["upload_id"])
        count = -(-f.size // part_size)
        fd = os.open(f.abspath, os.O_RDONLY)
        try:

            def send(number: int) -> int:
                offset = (number - 1) * part_size
                data = os.pread(fd, min(part_size, f.size - offset), offset)
                url = self._request(
                    "POST",
                    f"{API}/blobs/{sha256}/parts",
                    json={"size": f.size, "upload_id": upload_id, "number": number,
                          "part_sha256": hashlib.sha256(data).hexdigest()},
                )  # fmt: skip
                headers = {**url.get("headers", {}), "Content-Length": str(len(data))}
                self._s3_request("PUT", url["url"], f"upload part {number} of {f.path}", content=data, headers=headers)
                return len(data)

            done = 0
            for n in in_order(send, range(1, count + 1), _WORKERS):
                done += n
                if progress is not None:
                    progress(f.path, done, f.size)
        finally:
            os.close(fd)
        self._request(
            "POST", f"{API}/blobs/{sha256}/complete", json={"size": f.size, "upload_id": upload_id},
            timeout=self._patient(f.size),
        )  # fmt: skip

    # -- pull ------------------------------------------------------------------------------

    def pull(
        self,
        ref: object,
        out: str | os.PathLike[str],
        *,
        force: bool = False,
        allow_revoked: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """As :meth:`registry.Registry.pull`: every file re-hashed here, the directory published atomically."""
        params = {"allow_revoked": "true"} if allow_revoked else {}
        plan = self._request("GET", f"{API}/pulls/{quote(str(ref), safe='/:@')}", params=params)
        pinned = f"{plan['name']}:{plan['version']}"
        entries = tuple(FileEntry(path=f["path"], sha256=f["sha256"], size=int(f["size"])) for f in plan["files"])
        target = Path(out).expanduser().absolute()
        check_output_dir(target, force)
        from registry.catalog.pull import publish_pull  # imported here: it reaches the database layer

        user = self.whoami().user

        def fill(tmp: Path) -> None:
            for entry, f in zip(entries, plan["files"], strict=True):
                self._download(entry, f["download"], tmp, pinned, allow_revoked, target, progress)
            for d in {(tmp / e.path).parent for e in entries}:
                fsync_dir(d)

        publish_pull(
            target, fill, ref, str(plan["name"]), int(plan["version"]), str(plan["digest"]), {"url": self.url},
            now_iso, user, entries,
        )  # fmt: skip
        return PullResult(
            name=str(plan["name"]), version=int(plan["version"]), digest=str(plan["digest"]), path=target, files=entries
        )

    def _download(
        self,
        entry: FileEntry,
        how: Mapping[str, Any],
        tmp: Path,
        pinned: str,
        allow_revoked: bool,
        target: Path,
        progress: Progress | None,
    ) -> None:
        dst = tmp / entry.path
        if not dst.resolve().is_relative_to(tmp.resolve()):
            raise IntegrityError(
                f"{pinned}: the file path {entry.path!r} leaves the output directory; nothing was written"
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            h = hashlib.sha256()
            done = 0
            for chunk in self._chunks_of(entry, how, pinned, allow_revoked):
                if done + len(chunk) > entry.size:
                    done += len(chunk)
                    break
                pwrite_all(fd, chunk, done)
                h.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(entry.path, done, entry.size)
            os.fsync(fd)
        finally:
            os.close(fd)
        if done != entry.size or h.hexdigest() != entry.sha256:
            raise IntegrityError(
                f"{pinned}: {entry.path} arrived corrupted (expected sha256 {entry.sha256}, {entry.size} bytes; got "
                f"{h.hexdigest() if done == entry.size else 'other bytes'}, {done} bytes or more); nothing was written to "
                f"{target}. Pull again; if it fails again the blob is damaged in the store (`adapters fsck` on the "
                "server host)",
                name=pinned.rsplit(":", 1)[0],
                path=entry.path,
            )

    def _chunks_of(self, entry: FileEntry, how: Mapping[str, Any], pinned: str, allow_revoked: bool) -> Iterator[bytes]:
        if how.get("via") == "server":
            params = {"ref": pinned, **({"allow_revoked": "true"} if allow_revoked else {})}
            with self._stream("GET", f"{API}/blobs/{entry.sha256}", params=params) as response:
                yield from response.iter_bytes(CHUNK_SIZE)
            return
        url, headers = str(how["url"]), dict(how.get("headers", {}))
        if entry.size <= _RANGED:
            yield self._s3_request("GET", url, f"download {entry.path}", headers=headers).content
            return
        from registry.storage.blobs.s3client import in_order

        def fetch(start: int) -> bytes:
            end = min(start + _RANGE, entry.size) - 1
            ranged = {**headers, "Range": f"bytes={start}-{end}"}
            data: bytes = self._s3_request("GET", url, f"download {entry.path}", headers=ranged).content
            if not data:
                raise IntegrityError(f"{pinned}: {entry.path} ended early in the object store", path=entry.path)
            return data

        yield from in_order(fetch, range(0, entry.size, _RANGE), _WORKERS)


def _read_chunks(f: SourceFile, progress: Progress | None) -> Iterator[bytes]:
    """A file's bytes in chunks, never the whole of it."""
    done = 0
    with open(f.abspath, "rb") as src:
        while chunk := src.read(CHUNK_SIZE):
            done += len(chunk)
            if progress is not None:
                progress(f.path, done, f.size)
            yield chunk
