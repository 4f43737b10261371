"""What the audit log's operations return: checkpoints, verifications, reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry._io import atomic_write_bytes
from registry.domain.audit import Finding, checkpoint_payload

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

    def to_dict(self) -> dict[str, Any]:
        return {**checkpoint_payload(self.size, self.head, self.at, self.key), "signature": self.signature}


@dataclass(frozen=True)
class AuditVerification:
    """The result of ``adapters audit verify``. ``ok`` is False when anything was found."""

    events: int
    head: str
    findings: tuple[Finding, ...]
    checkpoints: tuple[dict[str, Any], ...] = field(default=())
    registry_key: str | None = None

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
        }


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
