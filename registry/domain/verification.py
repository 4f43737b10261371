"""Verification reports: what was checked, on what, with which result. Appended, never edited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.compat import Check

__all__ = ["VerificationReport"]


@dataclass(frozen=True)
class VerificationReport:
    """One run of ``adapters verify``. ``passed`` is False when any check failed."""

    name: str
    version: int
    digest: str
    mode: str
    base_name: str | None
    base_fingerprint: str | None
    recorded_base_fingerprint: str | None
    allow_base_mismatch: bool
    checks: tuple[Check, ...]
    not_checked: tuple[str, ...]
    created_at: str
    created_by: str
    device: str | None = None
    device_name: str | None = None
    quantization: Mapping[str, Any] | None = None
    libraries: Mapping[str, str] = field(default_factory=dict)
    load_seconds: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    reference: Mapping[str, Any] | None = None
    #: The serving-engine profiles the ``--target`` checks applied (engine, limits, base facts read); a report
    #: without targets has none and writes no ``serving`` key, so reports recorded before keep their digest.
    serving: tuple[Mapping[str, Any], ...] = ()
    id: int | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def report_digest(self) -> str:
        """``sha256:`` of the report's canonical JSON without its database id: what a signature covers."""
        body = self.to_dict()
        body.pop("id")
        return sha256_digest(canonical_json(body))

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "mode": self.mode,
            "passed": self.passed,
            "base": {
                "name": self.base_name,
                "fingerprint": self.base_fingerprint,
                "recorded_fingerprint": self.recorded_base_fingerprint,
                "allow_mismatch": self.allow_base_mismatch,
            },
            "checks": [c.to_dict() for c in self.checks],
            "not_checked": list(self.not_checked),
            "device": self.device,
            "device_name": self.device_name,
            "quantization": dict(self.quantization) if self.quantization is not None else None,
            "libraries": dict(self.libraries),
            "load_seconds": self.load_seconds,
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_kind": self.peak_memory_kind,
            "reference": dict(self.reference) if self.reference is not None else None,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }
        if self.serving:
            d["serving"] = [dict(p) for p in self.serving]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], id: int | None = None) -> VerificationReport:
        base = d["base"]
        return cls(
            id=id if id is not None else d.get("id"),
            name=d["name"],
            version=d["version"],
            digest=d["digest"],
            mode=d["mode"],
            base_name=base["name"],
            base_fingerprint=base["fingerprint"],
            recorded_base_fingerprint=base["recorded_fingerprint"],
            allow_base_mismatch=base["allow_mismatch"],
            checks=tuple(Check.from_dict(c) for c in d["checks"]),
            not_checked=tuple(d.get("not_checked") or ()),
            created_at=d["created_at"],
            created_by=d["created_by"],
            device=d.get("device"),
            device_name=d.get("device_name"),
            quantization=d.get("quantization"),
            libraries=d.get("libraries") or {},
            load_seconds=d.get("load_seconds"),
            peak_memory_bytes=d.get("peak_memory_bytes"),
            peak_memory_kind=d.get("peak_memory_kind"),
            reference=d.get("reference"),
            serving=tuple(dict(p) for p in d.get("serving") or ()),
        )
