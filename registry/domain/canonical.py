"""Canonical JSON and the digests computed over it.

Canonical JSON is the one byte encoding every digest in the registry is computed
over: keys sorted, no insignificant whitespace, UTF-8, no NaN or infinity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["canonical_json", "listing_digest", "sha256_digest"]


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def listing_digest(entries: Iterable[tuple[str, str]]) -> str:
    """Digest of a set of files given as ``(relative path, sha256 hex)`` pairs.

    It is the sha256 of the lines ``"<sha256>  <path>\\n"`` sorted by path: exactly
    what ``sha256sum`` prints for those files, so anyone can recompute it with
    ``(cd DIR && sha256sum FILES | sort -k2) | sha256sum`` (paths sorted bytewise,
    i.e. ``LC_ALL=C``).
    """
    lines = sorted(entries, key=lambda e: e[0].encode("utf-8"))
    text = "".join(f"{sha}  {path}\n" for path, sha in lines)
    return sha256_digest(text.encode("utf-8"))
