"""``adapters verify``: prove that a stored adapter fits the exact base it will run on.

Static checks read safetensors headers only; the load check really runs the adapter on
a 4-bit base (see :mod:`registry.verification.loadcheck`). Every run is stored as a report
attached to the version, whatever its outcome; the first passing load for a base
fingerprint and load setting also records a probe reference that later loads must match.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from registry.audit.log import AuditLog
from registry.basemodel import ResolvedBase, resolve_base
from registry.catalog.service import Catalog
from registry.domain.adapterdir import read_adapter_dir, read_safetensors_header
from registry.domain.canonical import canonical_json
from registry.domain.clock import now_iso
from registry.domain.compat import Check, check_fingerprint, static_checks
from registry.domain.refs import Ref
from registry.domain.verification import VerificationReport
from registry.errors import InvalidInput, NotFound
from registry.filehashes import FileHashCache
from registry.storage.tables import ProbeReferenceRow, VerificationRow
from registry.types import COMPUTE_DTYPES, FOUR_BIT_TYPES, VERIFY_MODES

__all__ = ["Verifier", "VerifyOptions"]

_VERIFICATIONS = VerificationRow.__table__  # type: ignore[attr-defined]
_REFERENCES = ProbeReferenceRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class VerifyOptions:
    """What ``adapters verify`` was asked to do."""

    mode: str = "all"
    device: str = "auto"
    quant: str = "nf4"
    double_quant: bool = True
    compute_dtype: str | None = None  # None: float32 on the CPU, bfloat16 on CUDA
    allow_base_mismatch: bool = False

    def __post_init__(self) -> None:
        if self.mode not in VERIFY_MODES:
            raise InvalidInput(f"unknown mode {self.mode!r}; use {', '.join(VERIFY_MODES)}")
        if self.quant not in FOUR_BIT_TYPES:
            raise InvalidInput(f"unknown 4-bit quantization {self.quant!r}; use {', '.join(FOUR_BIT_TYPES)}")
        if self.compute_dtype is not None and self.compute_dtype not in COMPUTE_DTYPES:
            raise InvalidInput(f"unknown compute dtype {self.compute_dtype!r}; use {', '.join(COMPUTE_DTYPES)}")


def _base_headers(resolved: ResolvedBase, directory: Path) -> tuple[list[Any], dict[str, Any]]:
    shards = sorted(directory.glob("*.safetensors"))
    if not shards:
        raise InvalidInput(
            f"base {resolved.base.name} has no *.safetensors weights in {directory}; verification reads safetensors "
            "headers and never loads pickles: re-save the base with save_pretrained(safe_serialization=True)"
        )
    tensors = [t for shard in shards for t in read_safetensors_header(shard)]
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return tensors, config


class Verifier:
    def __init__(self, catalog: Catalog, hashes: FileHashCache, audit: AuditLog) -> None:
        self.catalog = catalog
        self.db = catalog.db
        self.hashes = hashes
        self.audit = audit
        self.user = catalog.user

    def verify(self, ref: Ref, base: str | None, options: VerifyOptions) -> VerificationReport:
        with self.db.read() as session:
            row = self.catalog.resolve_row(session, ref)
        manifest = self.catalog.manifest_of(row)
        spec = base or manifest.base.name
        if not spec:
            raise InvalidInput(f"{manifest.name}:{manifest.version} has no recorded base; pass --base DIR")
        resolved = resolve_base(spec, None, self.hashes)
        if resolved.directory is None:
            raise NotFound(
                f"base {spec!r} is not on this machine (neither a directory nor in the local Hugging Face cache); "
                "pass --base with the base model's directory"
            )
        base_tensors, base_config = _base_headers(resolved, resolved.directory)
        checks = [check_fingerprint(manifest.base.fingerprint, resolved.base.fingerprint, options.allow_base_mismatch)]
        not_checked: list[str] = []
        load: Any = None
        settings: Any = None
        reference_note: dict[str, Any] | None = None
        with tempfile.TemporaryDirectory(prefix="adapters-verify-") as tmp:
            adapter_dir = Path(tmp)
            self.catalog.export_files(manifest, adapter_dir)
            adapter = read_adapter_dir(adapter_dir)
            if options.mode in ("static", "all"):
                static, unchecked = static_checks(
                    adapter.facts, adapter.config, adapter.tensors, base_tensors, base_config
                )
                checks.extend(static)
                not_checked.extend(unchecked)
            if options.mode in ("load", "all"):
                from registry.verification.loadcheck import LoadSettings, resolve_device, run_load_check

                device = resolve_device(options.device)
                settings = LoadSettings(
                    device=device,
                    quant=options.quant,
                    double_quant=options.double_quant,
                    compute_dtype=options.compute_dtype or ("bfloat16" if device == "cuda" else "float32"),
                )
                reference, reference_check, reference_note = self._reference(
                    row.id, resolved.base.fingerprint, settings.key
                )
                if reference_check is not None:
                    checks.append(reference_check)
                load = run_load_check(resolved.directory, adapter_dir, settings, reference)
                checks.extend(load.checks)
        report = VerificationReport(
            name=manifest.name,
            version=manifest.version,
            digest=row.digest,
            mode=options.mode,
            base_name=resolved.base.name,
            base_fingerprint=resolved.base.fingerprint,
            recorded_base_fingerprint=manifest.base.fingerprint,
            allow_base_mismatch=options.allow_base_mismatch,
            checks=tuple(checks),
            not_checked=tuple(not_checked),
            created_at=now_iso(),
            created_by=self.user,
            device=settings.device if settings else None,
            device_name=load.device_name if load else None,
            quantization=settings.to_dict() if settings else None,
            libraries=load.libraries if load else {},
            load_seconds=load.load_seconds if load else None,
            peak_memory_bytes=load.peak_memory_bytes if load else None,
            peak_memory_kind=load.peak_memory_kind if load else None,
            reference=reference_note,
        )
        new_reference = (
            load.sample
            if load is not None and report.passed and reference_note is None and resolved.base.fingerprint
            else None
        )
        return self._record(row.id, report, new_reference, settings.key if settings else None)

    def _reference(
        self, version_id: int, fingerprint: str | None, key: str
    ) -> tuple[Any, Check | None, dict[str, Any] | None]:
        """The probe reference to compare with: (sample and its description, a failed check if it is corrupted, note)."""
        from registry.verification.loadcheck import ProbeSample

        if fingerprint is None:
            return None, None, None
        with self.db.read() as session:
            row = session.execute(
                select(_REFERENCES)
                .where(
                    _REFERENCES.c.version_id == version_id,
                    _REFERENCES.c.base_fingerprint == fingerprint,
                    _REFERENCES.c.settings == key,
                )
                .order_by(_REFERENCES.c.id)
                .limit(1)
            ).first()
        if row is None:
            return None, None, None
        note = {"id": row.id, "recorded_at": row.created_at, "recorded_by": row.created_by, "settings": key}
        try:
            sample = ProbeSample.from_dict(json.loads(row.sample))
            intact = sample.digest == row.digest
        except (ValueError, KeyError, TypeError):
            intact = False
        if not intact:
            return (
                None,
                Check(
                    "probe-reference",
                    False,
                    f"the probe reference #{row.id} recorded {row.created_at} by {row.created_by} is corrupted: its "
                    "content does not match its digest; the database was altered (run `adapters audit verify`)",
                ),
                note,
            )
        return (sample, f"at {row.created_at} by {row.created_by} (#{row.id})"), None, note

    def _record(
        self, version_id: int, report: VerificationReport, sample: Any, settings_key: str | None
    ) -> VerificationReport:
        with self.db.write() as session:
            report_id = self._insert(session, version_id, report)
            self.audit.append(
                session,
                self.user,
                "verify",
                report.ref,
                {
                    "report": report_id,
                    "mode": report.mode,
                    "passed": report.passed,
                    "base_fingerprint": report.base_fingerprint,
                    "failed": [c.name for c in report.failures],
                },
            )
            if sample is not None and settings_key is not None and report.base_fingerprint is not None:
                session.execute(
                    _REFERENCES.insert().values(
                        version_id=version_id,
                        verification_id=report_id,
                        base_fingerprint=report.base_fingerprint,
                        settings=settings_key,
                        sample=canonical_json(sample.to_dict()).decode("utf-8"),
                        digest=sample.digest,
                        created_at=report.created_at,
                        created_by=self.user,
                    )
                )
        return VerificationReport.from_dict(report.to_dict(), id=report_id)

    @staticmethod
    def _insert(session: Session, version_id: int, report: VerificationReport) -> int:
        statement = (
            _VERIFICATIONS.insert()
            .values(
                version_id=version_id,
                created_at=report.created_at,
                created_by=report.created_by,
                mode=report.mode,
                passed=report.passed,
                base_fingerprint=report.base_fingerprint,
                report=canonical_json(report.to_dict()).decode("utf-8"),
            )
            .returning(_VERIFICATIONS.c.id)
        )
        return int(session.execute(statement).scalar_one())
