"""What the audit log's operations return: checkpoints, verifications, reports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry._io import atomic_write_bytes
from registry.domain.audit import Finding, checkpoint_payload
from registry.errors import InvalidInput

__all__ = ["AuditReport", "AuditVerification", "Checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the log's size and head, written to a file outside the database."""

    size: int
    head: str
    at: str
    key: str
    signature: str
    path: Path | None = None
    registry: str | None = None
    paths: tuple[Path, ...] = ()  # every file it was written to

    def to_dict(self) -> dict[str, Any]:
        return {
            **checkpoint_payload(self.size, self.head, self.at, self.key, self.registry),
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        """The checkpoint of :meth:`to_dict` (a checkpoint file's content, or a server's answer); ``path`` and
        ``paths`` where the dict names them (``audit checkpoint --json``)."""
        try:
            paths = tuple(Path(p) for p in d.get("paths") or ())
            path = d.get("path")
            registry = d.get("registry")
            return cls(
                int(d["size"]), str(d["head"]), str(d["at"]), str(d["key"]), str(d["signature"]),
                Path(path) if path is not None else None, None if registry is None else str(registry), paths,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("not a checkpoint: it lacks a field (size, head, at, key or signature)") from None


@dataclass(frozen=True)
class AuditVerification:
    """The result of ``adapters audit verify``. ``ok`` is False when anything was found."""

    events: int
    head: str
    findings: tuple[Finding, ...]
    checkpoints: tuple[dict[str, Any], ...] = field(default=())
    registry_key: str | None = None
    registry_id: str | None = None
    facts: int = 0  # fact rows checked against their events
    signatures: int = 0  # signatures verified
    unsigned_events: int = 0  # events recorded before signed governance began (the registry's init)
    initialised_at: int | None = None  # seq of the `registry init` event
    trust: dict[str, Any] | None = None  # the trust file checked, if any
    blobs: dict[str, Any] | None = None  # {mode, checked, bytes} when blobs were checked

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "findings": [f.to_dict() for f in self.findings],
            "checkpoints": list(self.checkpoints),
            "registry_key": self.registry_key,
            "registry_id": self.registry_id,
            "facts": self.facts,
            "signatures": self.signatures,
            "unsigned_events": self.unsigned_events,
            "initialised_at": self.initialised_at,
            "trust": self.trust,
            "blobs": self.blobs,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditVerification:
        """The verification of :meth:`to_dict` (``ok`` follows from its findings)."""
        initialised = d.get("initialised_at")
        return cls(
            events=int(d["events"]),
            head=str(d["head"]),
            findings=tuple(Finding.from_dict(f) for f in d.get("findings") or ()),
            checkpoints=tuple(dict(c) for c in d.get("checkpoints") or ()),
            registry_key=d.get("registry_key"),
            registry_id=d.get("registry_id"),
            facts=int(d.get("facts") or 0),
            signatures=int(d.get("signatures") or 0),
            unsigned_events=int(d.get("unsigned_events") or 0),
            initialised_at=None if initialised is None else int(initialised),
            trust=d.get("trust"),
            blobs=d.get("blobs"),
        )


@dataclass(frozen=True)
class AuditReport:
    """A rendered audit report: ``content`` in ``format``, ``data`` the facts it shows (the JSON form)."""

    format: str
    content: str
    data: dict[str, Any]
    sha256: str

    @property
    def problems(self) -> int:
        return len(self.data["alerts"])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report to ``path`` atomically (readers see the old file or the new one)."""
        target = Path(path).absolute()
        atomic_write_bytes(target, self.content.encode("utf-8"))
        return target
