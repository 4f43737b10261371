"""Reading the small YAML and JSON documents users hand in (``--meta`` files, policies, adapter configs).

Each is untrusted. So that none can hang a command or exhaust memory:

* only a regular file is read (a FIFO would block forever, ``/dev/zero`` never ends), and at
  most :data:`MAX_DOCUMENT_BYTES`: a larger one is refused before it is parsed;
* YAML anchors and aliases (``&name`` / ``*name``, and the ``<<`` merge key that needs them)
  are refused: a few hundred bytes of nested aliases expand to billions of nodes ("billion
  laughs"), and no registry document needs them;
* nesting too deep for the parsers (``RecursionError``) is reported, not raised as is.

Errors are :class:`DocumentError` (a plain ``ValueError``); each caller turns it into its own
:class:`~registry.errors.RegistryError` so the message names the kind of file and the fix.
"""

from __future__ import annotations

import functools
import os
import stat
from typing import Any

__all__ = ["MAX_DOCUMENT_BYTES", "DocumentError", "as_text", "check_size", "load_json", "load_yaml", "read_document"]

#: The largest metadata file, policy or adapter config read (real ones are a few KiB).
MAX_DOCUMENT_BYTES = 1 << 20

_KINDS = {
    stat.S_IFIFO: "a pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


class DocumentError(ValueError):
    """A document that cannot be read or parsed; the message names it (as the caller showed it) and says why."""


def _mib(limit: int) -> str:
    return f"{limit / (1 << 20):g} MiB"


def check_size(size: int, shown: str, limit: int = MAX_DOCUMENT_BYTES) -> None:
    """Refuse ``size`` bytes over ``limit``."""
    if size > limit:
        raise DocumentError(f"{shown} is larger than {_mib(limit)} ({size:,} bytes)")


def read_document(path: str | os.PathLike[str], shown: str | None = None, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Opened without blocking (a FIFO is seen for what it is, not waited on) and read no further
    than ``limit + 1`` bytes, so a file that grows while it is read is refused too.
    """
    name = shown or os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise DocumentError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a file")
            raise DocumentError(f"{name} is not a regular file ({kind})")
        check_size(st.st_size, name, limit)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise DocumentError(f"{name} is larger than {_mib(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise DocumentError(f"cannot read {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


class _AliasRefused(DocumentError):
    """Raised from inside the YAML composer; :func:`load_yaml` adds the file's name."""


@functools.cache
def _alias_free_loader() -> type:
    import yaml

    class AliasFreeLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that refuses anchors and aliases instead of composing them."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                raise _AliasRefused(
                    f"uses a YAML anchor or alias (line {mark.line + 1}, column {mark.column + 1}); YAML anchors "
                    "and aliases (&name, *name, <<) are not accepted because a few of them can expand a small "
                    "file into billions of values: write the value out in full where it is needed"
                )
            return super().compose_node(parent, index)

    return AliasFreeLoader


def load_yaml(text: str, shown: str) -> Any:
    """Parse YAML with the safe loader, refusing anchors, aliases and runaway nesting."""
    import yaml

    try:
        return yaml.load(text, Loader=_alias_free_loader())  # a SafeLoader subclass: no arbitrary tags
    except _AliasRefused as exc:
        raise DocumentError(f"{shown} {exc}") from None
    except RecursionError:
        raise DocumentError(f"{shown} is nested too deeply to be read") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{shown} is not valid YAML: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NonFinite(text)
    return value


class _NonFinite(ValueError):
    pass


def load_json(text: str, shown: str) -> Any:
    """Parse strict JSON: ``NaN``/``Infinity`` (which Python's json accepts) and numbers too large for a
    float are refused, and so is runaway nesting."""
    import json

    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        raise DocumentError(
            f"{shown} holds the non-finite number {exc}; JSON has no NaN or Infinity: give a finite number"
        ) from None
    except RecursionError:
        raise DocumentError(f"{shown} is nested too deeply to be read") from None
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{shown} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DocumentError(f"{shown} cannot be read: {exc}") from None


def as_text(data: bytes, shown: str) -> str:
    """``data`` as UTF-8 text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{shown} is not UTF-8 text") from None
