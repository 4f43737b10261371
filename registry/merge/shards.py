"""Streaming safetensors shards: read a shard's header, write a shard tensor by tensor.

safetensors' Python API writes a file from tensors that are all in memory at once; a
streaming merge must not hold a shard in memory, so the writer here produces the same
format itself. A merged tensor keeps its name and shape, so the output header is known
from the input's before any data is written: ``<u64 header length><JSON header padded to
8 bytes><tensor data in header order>``. Tensors that are not changed are copied byte
for byte in the kernel (``copy_file_range``); changed ones are computed one at a time.
A writer thread hashes and writes each tensor while the next one is computed, so the file's
sha256 costs no extra pass over the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._io import FILE_MODE, copy_range, pwrite_all
from registry.errors import InvalidInput

if TYPE_CHECKING:
    import torch

__all__ = ["ITEMSIZE", "ShardTensor", "numel", "read_header", "read_tensor", "torch_dtype", "write_shard"]

ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}  # fmt: skip
FLOATING = ("F64", "F32", "F16", "BF16")
_CODES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def code_of(dtype_name: str) -> str:
    """safetensors' dtype code for a torch dtype name (``bfloat16`` -> ``BF16``)."""
    return _CODES[dtype_name]


def torch_dtype(code: str) -> torch.dtype:
    import torch

    table = {
        "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
        "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
        "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    }  # fmt: skip
    return table[code]


@dataclass(frozen=True)
class ShardTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute offsets in the file
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def read_header(path: Path) -> tuple[list[ShardTensor], dict[str, str]]:
    """The tensors of a safetensors file in data order, and its metadata (validated by safetensors)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            pass  # safetensors validates the header and the offsets
    except SafetensorError as exc:
        raise InvalidInput(f"{path} is not a valid safetensors file ({exc})") from None
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + length
    tensors = [
        ShardTensor(
            name, info["dtype"], tuple(info["shape"]), base + info["data_offsets"][0], base + info["data_offsets"][1]
        )
        for name, info in header.items()
    ]
    return sorted(tensors, key=lambda t: t.start), metadata


def read_tensor(fd: int, entry: ShardTensor, into: bytearray | None = None) -> torch.Tensor:
    """One tensor of an open shard, read into memory (never mapped: memory stays bounded).

    ``into`` is a reusable buffer of at least ``entry.nbytes``; the tensor then aliases it.
    """
    import torch

    buf = into if into is not None else bytearray(entry.nbytes)
    view = memoryview(buf)[: entry.nbytes]
    done = 0
    while done < entry.nbytes:
        n = os.preadv(fd, [view[done:]], entry.start + done)
        if n <= 0:
            raise InvalidInput(f"tensor {entry.name} is cut short in its shard")
        done += n
    if entry.nbytes == 0:
        return torch.empty(entry.shape, dtype=torch_dtype(entry.dtype))
    return torch.frombuffer(buf, dtype=torch_dtype(entry.dtype), count=numel(entry.shape)).reshape(entry.shape)


#: (tensor entry, source fd, output dtype code) -> the new tensor (ideally already in that dtype), or None to copy
Transform = Callable[[ShardTensor, int, str], "torch.Tensor | None"]


class _Hasher(threading.Thread):
    """Hashes byte strings in the order they are given (sha256 releases the GIL on large buffers)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sha = hashlib.sha256()
        self.jobs: queue.SimpleQueue[tuple[memoryview | bytes, threading.Event] | None] = queue.SimpleQueue()

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            data, done = job
            self.sha.update(data)
            done.set()

    def submit(self, data: memoryview | bytes) -> threading.Event:
        done = threading.Event()
        self.jobs.put((data, done))
        return done

    def finish(self) -> str:
        self.jobs.put(None)
        self.join()
        return self.sha.hexdigest()


class _Writer(threading.Thread):
    """Writes one job at a time, in file order, while the caller computes the next tensor; the
    hasher hashes the same bytes from memory at the same time, so neither waits for the other.

    ``put`` waits until the previous job is *finished* (written and hashed), so at most one job
    is in flight: a producer alternating two buffers never overwrites data still in use.
    """

    def __init__(self, src_fd: int, dst_fd: int) -> None:
        super().__init__(daemon=True)
        self.src_fd, self.dst_fd = src_fd, dst_fd
        self.hasher = _Hasher()
        self.jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.idle = threading.Semaphore(1)
        self.error: BaseException | None = None

    def run(self) -> None:
        self.hasher.start()
        while (job := self.jobs.get()) is not None:
            try:
                if self.error is None:
                    kind, offset, end, payload = job
                    if kind == "copy":
                        copy_range(self.src_fd, self.dst_fd, payload, offset, end - offset)
                        self._hash_range(offset, end)
                    else:
                        hashed = self.hasher.submit(payload)
                        pwrite_all(self.dst_fd, payload, offset)
                        hashed.wait()
            except BaseException as exc:  # reported by put() and close()
                self.error = exc
            finally:
                self.idle.release()
        self.idle.release()

    def _hash_range(self, start: int, end: int) -> None:
        """Hash what the kernel copied, read back from the destination (the page cache)."""
        buf = bytearray(min(8 << 20, max(end - start, 1)))
        view = memoryview(buf)
        position = start
        while position < end:
            n = os.preadv(self.dst_fd, [view[: min(len(buf), end - position)]], position)
            if n <= 0:
                raise OSError("output shard shorter than written")
            self.hasher.submit(view[:n]).wait()  # waited for, so the buffer can be reused
            position += n

    def put(self, job: tuple[Any, ...]) -> None:
        self.idle.acquire()
        if self.error is not None:
            self.idle.release()
            raise self.error
        self.jobs.put(job)

    def close(self) -> str:
        """Wait for every job; the sha256 of everything written."""
        self.idle.acquire()
        self.jobs.put(None)
        self.join()
        digest = self.hasher.finish()
        if self.error is not None:
            raise self.error
        return digest

    def abort(self) -> None:
        self.error = self.error or RuntimeError("shard write aborted")
        self.idle.acquire()
        self.jobs.put(None)
        self.join()
        self.hasher.finish()


def _output_header(
    tensors: list[ShardTensor], metadata: dict[str, str], out_codes: dict[str, str]
) -> tuple[bytes, int]:
    """The output shard's JSON header (padded to 8 bytes) and the size of its data: the input's tensors,
    names and shapes in the same order, with their output dtypes."""
    out_header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for t in tensors:
        size = ITEMSIZE[out_codes[t.name]] * numel(t.shape)
        out_header[t.name] = {
            "dtype": out_codes[t.name],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(out_header, separators=(",", ":")).encode("utf-8")
    return encoded + b" " * (-len(encoded) % 8), offset


def write_shard(
    src: Path,
    dst: Path,
    transform: Transform,
    out_dtype: str | None,
    progress: Callable[[str, int, int], None] | None = None,
    header: tuple[list[ShardTensor], dict[str, str]] | None = None,
    fsync: bool = True,
) -> tuple[str, int, int]:
    """Write ``dst`` with ``src``'s tensors, each replaced by ``transform(entry, src_fd, code)`` when it
    returns a tensor, else copied (cast to ``out_dtype`` if given and floating).

    Returns (sha256, size, tensors changed). Changed tensors must keep their shape. ``header``
    is ``read_header(src)`` when the caller has it already. A transform may return views of
    two buffers it alternates between: each is written before the next-but-one call.
    """
    tensors, metadata = header if header is not None else read_header(src)
    out_codes = {t.name: (out_dtype if out_dtype and t.dtype in FLOATING else t.dtype) for t in tensors}
    encoded, offset = _output_header(tensors, metadata, out_codes)
    data_start = 8 + len(encoded)
    total = data_start + offset
    changed = 0
    src_fd = os.open(src, os.O_RDONLY)
    dst_fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    writer = _Writer(src_fd, dst_fd)
    writer.start()
    try:
        writer.put(("bytes", 0, data_start, struct.pack("<Q", len(encoded)) + encoded))
        position = data_start
        for t in tensors:
            code = out_codes[t.name]
            end = position + ITEMSIZE[code] * numel(t.shape)
            result = transform(t, src_fd, code)
            if result is None and code == t.dtype:
                writer.put(("copy", position, end, t.start))
            else:
                tensor = result if result is not None else read_tensor(src_fd, t)
                if tuple(tensor.shape) != t.shape:
                    raise InvalidInput(
                        f"{t.name}: merged shape {list(tensor.shape)} differs from the base's {list(t.shape)}"
                    )
                changed += result is not None
                wanted = torch_dtype(code)
                data = tensor if tensor.dtype == wanted and tensor.is_contiguous() else tensor.to(wanted).contiguous()
                writer.put(("bytes", position, end, _bytes(data)))
            position = end
            if progress is not None:
                progress(dst.name, position, total)
        digest = writer.close()
        if fsync:
            os.fsync(dst_fd)
    except BaseException:
        if writer.is_alive():
            writer.abort()
        raise
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    return digest, total, changed


def _bytes(tensor: torch.Tensor) -> memoryview:
    import torch

    if tensor.numel() == 0:
        return memoryview(b"")
    data: memoryview = tensor.reshape(-1).view(torch.uint8).numpy().data
    return data


def numel(shape: tuple[int, ...]) -> int:
    """Elements of a tensor of this shape."""
    n = 1
    for d in shape:
        n *= d
    return n
