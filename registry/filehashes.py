"""A machine-local cache of file hashes, keyed on path, size, mtime and inode.

Fingerprinting a 16 GB base model takes seconds; doing it again for every push of
an adapter trained on it should not. The cache is an SQLite file under
``$ADAPTERS_HOME/cache``: local to this machine (paths mean nothing elsewhere), and
never trusted beyond its key (a file whose size, mtime or inode changed is hashed again).
If the cache cannot be used (read-only home), hashing simply happens every time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from registry._io import Progress, hash_file

__all__ = ["FileHashCache"]


class FileHashCache:
    def __init__(self, directory: Path | None) -> None:
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # files are hashed on several threads
        if directory is None:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                directory / "file-hashes.sqlite", timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS file_hash (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                "inode INTEGER, sha256 TEXT)"
            )
            self._conn = conn
        except (OSError, sqlite3.Error):
            self._conn = None

    def sha256(self, path: Path, progress: Progress | None = None, label: str = "") -> str:
        """The sha256 hex of ``path``, from the cache when the file has not changed."""
        real = os.path.realpath(path)
        st = os.stat(real)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if self._conn is not None:
            try:
                with self._lock:
                    row = self._conn.execute(
                        "SELECT size, mtime_ns, inode, sha256 FROM file_hash WHERE path = ?", (real,)
                    ).fetchone()
            except sqlite3.Error:
                row = None
            if row is not None and tuple(row[:3]) == key:
                return str(row[3])
        sha, _ = hash_file(real, progress, label or path.name)
        if self._conn is not None:
            try:
                with self._lock:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO file_hash (path, size, mtime_ns, inode, sha256) VALUES (?, ?, ?, ?, ?)",
                        (real, *key, sha),
                    )
            except sqlite3.Error:
                pass  # a cache that cannot be written only costs time
        return sha

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
