"""Files that are, or hold, Python pickles, whatever they are called: loading one can run code.

Nothing here unpickles, imports numpy or torch, or loads an array: a file is judged by its name
and by its first bytes only.

* by name: :data:`PICKLE_SUFFIXES` (``torch.save``, ``pickle``, ``joblib`` files);
* a raw pickle: the first bytes are a pickle protocol header (``\\x80\\x02`` to ``\\x80\\x05``),
  which is also how a legacy (non-zip) ``torch.save`` file starts;
* a NumPy ``.npy`` array (known by its magic) whose header declares Python objects (dtype ``O``,
  also inside a structured dtype): ``np.load(allow_pickle=True)`` unpickles those. A numeric
  ``.npy`` stays allowed: ``np.load`` reads it without pickle (``allow_pickle=False`` is numpy's
  default), and masks or embeddings saved that way are legitimate companions of an adapter. A
  header that cannot be read, or a dtype this reader does not know, is refused rather than guessed;
* a zip archive (known by its magic ``PK\\x03\\x04``, whatever its name: a zip ``torch.save`` file,
  an ``.npz``, ``weights.zip``) with a member that is any of the above, or an archive inside it
  (which is not opened) or that cannot be read.
"""

from __future__ import annotations

import ast
import os
import struct
from pathlib import Path
from typing import IO, Any

__all__ = ["PICKLE_SUFFIXES", "pickle_reason"]

#: File types that are Python pickles (or zip files of pickles): loading them can run code.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
#: Files not sniffed: a safetensors file starts with its header's length, which may look like anything.
_UNSNIFFED = (".safetensors",)
_PICKLE_HEADERS = tuple(bytes([0x80, p]) for p in range(2, 6))
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"
_NPY_MAX_HEADER = 64 << 10
_HEAD_BYTES = 12 + _NPY_MAX_HEADER
#: dtype kinds that hold no Python objects: bool, integers, floats, complex, bytes, str, void, times.
_PLAIN_KINDS = frozenset("?biufcSUaVMm")


def pickle_reason(path: Path, name: str) -> str | None:
    """Why the file at ``path`` (called ``name`` in its directory) is or holds a pickle, or None."""
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return f"a pickle-based file ({suffix})"
    if name.lower().endswith(_UNSNIFFED):
        return None
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if head.startswith(_ZIP_MAGIC):
        return _zip_reason(path)
    return _content_reason(head)


def _content_reason(head: bytes) -> str | None:
    if head.startswith(_PICKLE_HEADERS):
        return f"a pickle (it starts with the pickle protocol {head[1]} header)"
    if head.startswith(_NPY_MAGIC):
        return _npy_reason(head)
    return None


def _npy_reason(head: bytes) -> str | None:
    """Why a ``.npy`` array may need unpickling (read from its header only), or None."""
    try:
        major = head[6]
        if major == 1:
            (length,), start = struct.unpack("<H", head[8:10]), 10
        else:
            (length,), start = struct.unpack("<I", head[8:12]), 12
        if length > _NPY_MAX_HEADER or start + length > len(head):
            return "a NumPy array whose header is too large to check, so it may hold Python objects (a pickle)"
        header = ast.literal_eval(head[start : start + length].decode("utf-8" if major >= 3 else "latin1"))
        descr = header["descr"]
    except (struct.error, IndexError, KeyError, TypeError, ValueError, SyntaxError, RecursionError, MemoryError):
        return "a NumPy array whose header cannot be read, so it may hold Python objects (a pickle)"
    objects = _has_objects(descr)
    if objects is None:
        return f"a NumPy array of dtype {descr!r}, which may hold Python objects (a pickle)"
    return f"a NumPy array of Python objects (dtype {descr!r}), which np.load unpickles" if objects else None


def _has_objects(descr: Any) -> bool | None:
    """Whether a ``.npy`` dtype description holds Python objects; None when it cannot be told."""
    if isinstance(descr, str):
        kind = descr.lstrip("<>|=")[:1]
        return False if kind in _PLAIN_KINDS else True if kind == "O" else None
    if isinstance(descr, tuple) and len(descr) == 2:
        return _has_objects(descr[0])  # (dtype, shape): a sub-array
    if isinstance(descr, list):  # a structured dtype: [(name, dtype[, shape]), ...]
        for field in descr:
            if not isinstance(field, (tuple, list)) or len(field) not in (2, 3):
                return None
            inner = _has_objects(field[1])
            if inner is None or inner:
                return inner
        return False
    return None


def _zip_reason(path: Path) -> str | None:
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                with zf.open(info) as member:
                    reason = _member_reason(info.filename, member)
                if reason is not None:
                    return f"a zip archive whose member {info.filename!r} is {reason}"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:
        return f"a zip archive that cannot be read ({exc}), so what it holds (a pickle?) cannot be checked"
    except OSError as exc:
        return f"a zip archive that cannot be read ({exc.strerror or exc}), so it may hold a pickle"
    return None


def _member_reason(name: str, member: IO[bytes]) -> str | None:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in PICKLE_SUFFIXES:
        return f"a pickle-based file ({suffix})"
    head = member.read(_HEAD_BYTES)
    if head.startswith(_ZIP_MAGIC):
        return "another zip archive, which is not opened, so it may hold a pickle"
    return _content_reason(head)
