"""Temporary names that say who owns them, and the removal of those whose owner is gone.

A push, pull, merge or release writes under a temporary name and renames it into place; a
process that is killed (``SIGKILL``, a power cut, the OOM killer) leaves the temporary behind,
and such leftovers are often hundreds of megabytes. Every temporary name therefore carries its
owner::

    {prefix}{pid}.{host}.{random}.incomplete     (host: the machine's name and PID namespace)

and the next run that writes to the same place (the same pull or merge target, the same blob
store) removes the leftovers there whose owner is gone:

* a name of this machine whose process no longer exists (``os.kill(pid, 0)`` raises
  ``ProcessLookupError``; a ``PermissionError`` means it exists, under another user);
* a name of another machine (a shared filesystem), or an older name without an owner, only when
  nothing in it has changed for :data:`ORPHAN_AGE` seconds: its owner cannot be asked.

A process whose PID was reused keeps its leftover until that process is gone too; that errs on
the side of never removing what somebody may still be writing.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

__all__ = ["ORPHAN_AGE", "SUFFIX", "remove_orphans", "temporary_name"]

SUFFIX = ".incomplete"
#: Seconds without a change after which a leftover whose owner cannot be asked is removed.
ORPHAN_AGE = 3600.0
_PID_MAX = 1 << 22  # the kernel's largest pid_max


@functools.cache
def _host() -> str:
    """This machine's name, reduced to letters, digits and '-' (so that '.' separates the parts), and
    on Linux its PID namespace: a container sharing the host's name (``--network host``) numbers its
    processes apart, so its PIDs must not be judged here."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "localhost"
    try:
        return f"{host}-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return host


def temporary_name(prefix: str) -> str:
    """A fresh temporary name owned by this process: ``{prefix}{pid}.{host}.{random}.incomplete``."""
    return f"{prefix}{os.getpid()}.{_host()}.{secrets.token_hex(6)}{SUFFIX}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by somebody else
        return True
    except OSError:
        return True  # cannot tell: keep it
    return True


def _last_change(path: str) -> float:
    """The newest modification time of ``path`` and, for a directory, of anything inside it."""
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
                except OSError:
                    continue
    return newest


def _orphaned(tag: str, path: str, now: float, max_age: float) -> bool:
    """Whether the leftover ``path``, whose name holds ``tag`` between the prefix and the suffix, is an orphan."""
    parts = tag.split(".")
    if len(parts) == 3 and parts[0].isdigit() and 0 < int(parts[0]) < _PID_MAX:
        if parts[1] == _host():
            return not _alive(int(parts[0]))
    elif len(parts) != 1:
        return False  # not one of ours (another target whose name starts with the same prefix)
    try:
        return now - _last_change(path) > max_age
    except OSError:
        return False


def remove_orphans(directory: Path, prefix: str, max_age: float = ORPHAN_AGE) -> list[str]:
    """Remove the temporary leftovers ``{prefix}*.incomplete`` in ``directory`` whose owner is gone.

    Returns the names removed. Never raises: a leftover that cannot be removed now is tried again
    by the next run.
    """
    try:
        with os.scandir(directory) as it:
            candidates = [e for e in it if e.name.startswith(prefix) and e.name.endswith(SUFFIX)]
    except OSError:
        return []
    now = time.time()
    removed = []
    for entry in candidates:
        if not _orphaned(entry.name[len(prefix) : -len(SUFFIX)], entry.path, now, max_age):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    return removed
