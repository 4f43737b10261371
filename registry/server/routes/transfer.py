"""Pushes and pulls over the API: blobs first, the version last (see :mod:`registry.catalog.transfer`).

==========================================  =========================================================
``POST /api/v1/blobs/missing``              which of the push's blobs the store lacks, and how to upload each
``PUT /api/v1/blobs/{sha256}``              a blob's raw bytes (``application/octet-stream``, with
                                            ``Content-Length``), into a local store, hashed as written
``POST /api/v1/blobs/{sha256}/parts``       the presigned URL of one part of a multipart upload to S3
``POST /api/v1/blobs/{sha256}/complete``    after an upload to S3: completed and re-hashed from the store
``POST /api/v1/versions``                   the commit: the file list and the user's statements
``GET /api/v1/pulls/{ref}``                 a version's files, each with where to download it
``GET /api/v1/blobs/{sha256}?ref=REF``      one file of that version, streamed (a local store)
==========================================  =========================================================

Every one needs a token; uploads and the commit need a role that may push. A blob's bytes are never
held in memory: they are read from the connection in chunks and written to the store's ``tmp/`` as
they come (streamed out the same way).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["BLOB_UPLOAD_PREFIX", "routes"]

#: Requests under this path carry raw bytes, which the JSON body limit does not apply to.
BLOB_UPLOAD_PREFIX = f"{API}/blobs/"
#: How much of a streamed body is gathered before it is handed to the writing thread.
_BATCH = 4 << 20


def _body_in_batches(request: Any) -> Iterator[bytes]:
    """The request's body, read on the event loop and handed to this (worker) thread in batches."""
    import anyio.from_thread

    stream: AsyncIterator[bytes] = request.stream().__aiter__()
    done = False

    async def next_batch() -> bytes:
        nonlocal done
        parts: list[bytes] = []
        held = 0
        while held < _BATCH:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                done = True
                break
            parts.append(chunk)
            held += len(chunk)
        return b"".join(parts)

    while not done:
        batch = anyio.from_thread.run(next_batch)
        if batch:
            yield batch


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """Uploads, the commit of a version, and downloads."""
    from fastapi import Body, Depends, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    from registry import ApiToken
    from registry.server.errors import error_body

    @app.post(f"{API}/blobs/missing", tags=["transfer"])
    def missing_blobs(
        request: Request,
        blobs: list[dict[str, Any]] = Body(embed=True),
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """Of the blobs named (``{"sha256", "size"}`` each), those the store lacks, each with how to upload it."""
        return {"missing": as_caller(request, token).missing_blobs(blobs)}

    @app.put(f"{API}/blobs/{{sha256}}", tags=["transfer"])
    def put_blob(sha256: str, request: Request, token: ApiToken = Depends(caller)) -> Any:
        """A blob's raw bytes, refused (and nothing kept) unless they are Content-Length bytes hashing to
        ``sha256``; 413 over the server's per-file limit, before a byte is stored."""
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            body = error_body(
                "LengthRequired", "a blob upload needs a Content-Length header (the file's size in bytes)", 1
            )
            return JSONResponse(body, status_code=411)
        return as_caller(request, token).receive_blob(sha256, int(length), _body_in_batches(request))

    @app.post(f"{API}/blobs/{{sha256}}/parts", tags=["transfer"])
    def part_url(
        sha256: str,
        request: Request,
        size: int = Body(embed=True),
        upload_id: str = Body(embed=True),
        number: int = Body(embed=True),
        part_sha256: str = Body(embed=True),
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """The presigned URL of one part of a multipart upload, the part's SHA-256 signed into it."""
        return dict(as_caller(request, token).upload_part_url(sha256, size, upload_id, number, part_sha256))

    @app.post(f"{API}/blobs/{{sha256}}/complete", tags=["transfer"])
    def complete_upload(
        sha256: str,
        request: Request,
        size: int = Body(embed=True),
        upload_id: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """After an upload to S3: the upload completed and the object re-hashed from the store."""
        return dict(as_caller(request, token).complete_upload(sha256, size, upload_id))

    @app.post(f"{API}/versions", tags=["transfer"])
    def commit_version(
        request: Request,
        name: str = Body(embed=True),
        files: list[dict[str, Any]] = Body(embed=True),
        base: dict[str, Any] | None = Body(default=None, embed=True),
        meta: dict[str, Any] | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """Record the next version of ``name`` from uploaded blobs; its facts are read from them."""
        result = as_caller(request, token).commit_push(name, files, base=base, meta=meta)
        return dict(result.to_dict())

    @app.get(f"{API}/pulls/{{ref:path}}", tags=["transfer"])
    def pull_plan(
        ref: str,
        request: Request,
        allow_revoked: bool = False,
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """A version's files, each with where to download it; a revoked version only with ``allow_revoked``."""
        return dict(as_caller(request, token).pull_plan(ref, allow_revoked=allow_revoked))

    @app.get(f"{API}/blobs/{{sha256}}", tags=["transfer"])
    def get_blob(
        sha256: str,
        request: Request,
        ref: str,
        allow_revoked: bool = False,
        token: ApiToken = Depends(caller),
    ) -> StreamingResponse:
        """One file of the version ``ref``, streamed (the client re-hashes it); ``Range: bytes=A-B`` answers
        206 with those bytes only (a safetensors header, for static verification)."""
        span = _range(request.headers.get("range"))
        served = as_caller(request, token)
        chunks, size = served.open_version_blob(ref, sha256, allow_revoked=allow_revoked, span=span)
        if span is None:
            headers = {"Content-Length": str(size)}
            return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
        headers = {"Content-Length": str(size), "Content-Range": f"bytes {span[0]}-{span[0] + size - 1}/*"}
        return StreamingResponse(chunks, status_code=206, media_type="application/octet-stream", headers=headers)


def _range(header: str | None) -> tuple[int, int] | None:
    """(start, length) of a single ``bytes=A-B`` range, None without one."""
    from registry.errors import InvalidInput

    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip() != "bytes" or not dash or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise InvalidInput(f"unsupported Range {header[:80]!r}: give one range of bytes, as bytes=START-END")
    return int(first), int(last) - int(first) + 1
