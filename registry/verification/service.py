"""``adapters verify``: prove that a stored adapter fits the exact base it will run on.

Static checks read safetensors headers only: in mode ``static`` the adapter's config and headers
come straight from the blob store by ranged reads (:mod:`registry.catalog.headers`), so the
weights are never downloaded, nor re-hashed (``adapters fsck`` does that). The load check really
runs the adapter on the base, 4-bit NF4 by default (see :mod:`registry.verification.loadcheck`): for it every file
is exported and re-hashed, and mode ``all`` reads the headers from that export. Every run is
stored as a report attached to the version, whatever its outcome; the first passing load for a
base fingerprint and load setting also records a probe reference that later loads must match.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry._io import scratch_dir
from registry.audit.log import AuditLog
from registry.basemodel import ResolvedBase, recorded_base_spec, resolve_base
from registry.catalog.resolve import check_push_record, resolve
from registry.catalog.service import Catalog
from registry.domain.actor import Actor
from registry.domain.adapterdir import AdapterContents, read_adapter_dir, read_safetensors_header
from registry.domain.clock import Clock, parse_iso
from registry.domain.compat import Check, check_fingerprint, static_checks
from registry.domain.refs import Ref
from registry.domain.serving import ServingTarget
from registry.domain.signing import SIGNATURE_WINDOW_S, Signer
from registry.domain.verification import VerificationReport
from registry.domain.versions import Manifest
from registry.errors import Conflict, InvalidInput, NotFound
from registry.filehashes import FileHashCache
from registry.policies import active_policy
from registry.storage.records import StoredProbeReference, StoredVersion
from registry.types import COMPUTE_DTYPES, LOAD_QUANTIZATIONS, VERIFY_MODES
from registry.verification.serving import check_submitted_serving, serving_part

__all__ = ["CheckOutcome", "Verifier", "VerifyOptions", "VersionSource", "run_checks"]


@dataclass(frozen=True)
class VerifyOptions:
    """What ``adapters verify`` was asked to do."""

    mode: str = "all"
    device: str = "auto"
    quant: str = "nf4"  # nf4, fp4 (4-bit), int8 (LLM.int8) or none (the base in its own dtype)
    double_quant: bool = True  # 4-bit only
    compute_dtype: str | None = None  # None: float32 on the CPU, bfloat16 on CUDA; for none the base's own dtype
    allow_base_mismatch: bool = False
    targets: tuple[ServingTarget, ...] = ()  # serving engines the adapter is checked against, in any mode

    def __post_init__(self) -> None:
        if self.mode not in VERIFY_MODES:
            raise InvalidInput(f"unknown mode {self.mode!r}; use {', '.join(VERIFY_MODES)}")
        if self.quant not in LOAD_QUANTIZATIONS:
            raise InvalidInput(
                f"unknown load quantization {self.quant!r}; use {', '.join(LOAD_QUANTIZATIONS)} (none: the base "
                "in its own dtype, not quantized)"
            )
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


def _static(
    adapter: AdapterContents, base_tensors: list[Any], base_config: dict[str, Any], not_checked: list[str]
) -> list[Check]:
    """The header-level checks; what they could not check is added to ``not_checked``."""
    checks, unchecked = static_checks(adapter.facts, adapter.config, adapter.tensors, base_tensors, base_config)
    not_checked.extend(unchecked)
    return checks


@dataclass(frozen=True)
class VersionSource:
    """Where the checks read a version from: the embedded blob store, or the registry server."""

    headers: Callable[[], AdapterContents]  # config, facts and tensors, by ranged reads (mode static)
    export: Callable[[Path], None]  # every file written into a directory, re-hashed (modes load and all)
    reference: Callable[[str, str], StoredProbeReference | None]  # (base fingerprint, load settings' key)


@dataclass(frozen=True)
class CheckOutcome:
    """A report not recorded yet, and the probe reference it sets (a first passing load) with its settings."""

    report: VerificationReport
    sample: Any  # loadcheck.ProbeSample or None
    settings_key: str | None


def run_checks(
    manifest: Manifest,
    digest: str,
    base: str | None,
    options: VerifyOptions,
    source: VersionSource,
    hashes: FileHashCache,
    actor: str,
    clock: Clock,
) -> CheckOutcome:
    """Run the checks ``options`` asks for on the version ``manifest`` describes, against ``base`` (on this
    machine): the same whether the version comes from the embedded store or through the server."""
    spec, name = recorded_base_spec(manifest.base, base, f"{manifest.name}:{manifest.version}")
    resolved = resolve_base(spec, None, hashes, name=name)
    if resolved.model_dir is None:
        raise NotFound(
            f"base {base or manifest.base.name!r} is not on this machine (neither a directory nor in the local "
            "Hugging Face cache); pass --base with the base model's directory"
        )
    # the base's headers are read whatever the mode: they also prove it is safetensors (never a pickle)
    base_tensors, base_config = _base_headers(resolved, resolved.model_dir)
    checks = [check_fingerprint(manifest.base, resolved.base, options.allow_base_mismatch, resolved.also_known_as)]
    not_checked: list[str] = []
    load: _Load | None = None
    if options.mode == "static":  # headers only, by ranged reads: the weights never leave the store
        contents = source.headers()
        checks += _static(contents, base_tensors, base_config, not_checked)
    else:  # the load check runs the adapter: every file is exported (re-hashed), and `all` reads headers there
        with scratch_dir("adapters-verify-") as tmp:
            adapter_dir = Path(tmp)
            source.export(adapter_dir)
            adapter = read_adapter_dir(adapter_dir)
            contents = adapter.contents
            if options.mode == "all":
                checks += _static(adapter.contents, base_tensors, base_config, not_checked)
            load = _load(resolved, adapter_dir, options, source.reference)
        checks.extend(load.checks)
    serving, profiles = serving_part(options.targets, contents, base_config)  # config and headers: every mode
    checks += serving
    report = VerificationReport(
        name=manifest.name,
        version=manifest.version,
        digest=digest,
        mode=options.mode,
        base_name=resolved.base.name,
        base_fingerprint=resolved.base.fingerprint,
        recorded_base_fingerprint=manifest.base.fingerprint,
        allow_base_mismatch=options.allow_base_mismatch,
        checks=tuple(checks),
        not_checked=tuple(not_checked),
        serving=profiles,
        created_at=clock(),
        created_by=actor,
        **(load.report_fields() if load is not None else {}),
    )
    new_reference = (
        load.outcome.sample
        if load is not None and report.passed and load.reference_note is None and resolved.base.fingerprint
        else None
    )
    return CheckOutcome(report, new_reference, load.settings.key if load else None)


def _load(
    resolved: ResolvedBase,
    adapter_dir: Path,
    options: VerifyOptions,
    stored_reference: Callable[[str, str], StoredProbeReference | None],
) -> _Load:
    from registry.verification.loadcheck import LoadSettings, resolve_device, run_load_check

    directory = resolved.model_dir
    if directory is None:  # run_checks refused that already
        raise NotFound(f"base {resolved.base.name!r} is not on this machine")
    device = resolve_device(options.device)
    settings = LoadSettings.choose(device, options.quant, options.double_quant, options.compute_dtype, directory)
    fingerprint = resolved.base.fingerprint
    looked_up: dict[str, tuple[Any, Check | None, dict[str, Any] | None]] = {}

    def reference(key: str) -> Any:  # asked for the settings the reported load ran with (full precision on fallback)
        stored = stored_reference(fingerprint, key) if fingerprint is not None else None
        looked_up[key] = _reference(stored, key)
        return looked_up[key][0]

    outcome = run_load_check(directory, adapter_dir, settings, reference)
    ran = outcome.settings or settings
    _, reference_check, note = looked_up.get(ran.key, (None, None, None))
    checks = ((reference_check,) if reference_check is not None else ()) + outcome.checks
    return _Load(ran, outcome, note, checks)


def reference_note(stored: StoredProbeReference, key: str) -> dict[str, Any]:
    """What a report says about the probe reference its load was compared with."""
    return {"id": stored.id, "recorded_at": stored.created_at, "recorded_by": stored.created_by, "settings": key}


def _reference(stored: StoredProbeReference | None, key: str) -> tuple[Any, Check | None, dict[str, Any] | None]:
    """The probe reference to compare with: (sample and its description, a failed check if it is corrupted, note)."""
    from registry.verification.loadcheck import ProbeSample

    if stored is None:
        return None, None, None
    note = reference_note(stored, key)
    try:
        sample = ProbeSample.from_dict(json.loads(stored.sample_json))
        intact = sample.digest == stored.digest
    except (ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        return (
            None,
            Check(
                "probe-reference",
                False,
                f"the probe reference #{stored.id} recorded {stored.created_at} by {stored.created_by} is "
                "corrupted: its content does not match its digest; the database was altered (run `adapters "
                "audit verify`)",
            ),
            note,
        )
    return (sample, f"at {stored.created_at} by {stored.created_by} (#{stored.id})"), None, note


class Verifier:
    def __init__(self, catalog: Catalog, hashes: FileHashCache, audit: AuditLog, clock: Clock) -> None:
        self.catalog = catalog
        self.identity = catalog.identity
        self.store = catalog.store
        self.hashes = hashes
        self.audit = audit
        self.clock = clock

    def verify(
        self, actor: Actor, ref: Ref, base: str | None, options: VerifyOptions, signer: Signer | None = None
    ) -> VerificationReport:
        """Run the checks ``options`` asks for against ``base`` and record the report, whatever its outcome."""
        with self.store.read() as records:
            version = resolve(records, ref, self.identity.access(records, actor))
            check_push_record(records, version)
        manifest = version.manifest()

        def reference(fingerprint: str, key: str) -> StoredProbeReference | None:
            with self.store.read() as records:
                return records.probe_reference(version.id, fingerprint, key)

        source = VersionSource(
            headers=lambda: self.catalog.read_headers(manifest),
            export=lambda directory: self.catalog.export_files(manifest, directory),
            reference=reference,
        )
        outcome = run_checks(manifest, version.digest, base, options, source, self.hashes, actor.name, self.clock)
        return self.record(actor, version, outcome.report, outcome.sample, outcome.settings_key, signer)

    def record_submitted(
        self,
        actor: Actor,
        ref: Ref,
        submitted: Mapping[str, Any],
        sample: Mapping[str, Any] | None,
        signer: Signer | None = None,
    ) -> VerificationReport:
        """Record a report a client computed where the base model is (``adapters verify`` through the server).

        The server cannot run the checks (it has no base model), so it checks everything else it can
        derive: the report names this version, its digest and recorded base; its author is the caller;
        its time is the server's (within the signature window); its serving-target checks are the ones the
        version's stored config and headers give for its profiles; it was compared with the probe
        reference recorded for its base and load settings, if there is one; and a new reference comes
        only from a first passing load, its digest computed here.
        """
        from registry.verification.loadcheck import ProbeSample

        with self.store.read() as records:
            version = resolve(records, ref, self.identity.access(records, actor))
            check_push_record(records, version)
        manifest = version.manifest()
        try:
            report = VerificationReport.from_dict({**submitted, "created_by": actor.name, "id": None})
            VerifyOptions(report.mode)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidInput(
                f"the verification report is malformed ({type(exc).__name__}: {exc}); run `adapters verify` again"
            ) from None
        expected = {"name": manifest.name, "version": manifest.version, "digest": version.digest,
                    "base.recorded_fingerprint": manifest.base.fingerprint}  # fmt: skip
        got = {"name": report.name, "version": report.version, "digest": report.digest,
               "base.recorded_fingerprint": report.recorded_base_fingerprint}  # fmt: skip
        wrong = [k for k in expected if expected[k] != got[k]]
        if wrong:
            raise InvalidInput(
                f"the verification report is not about {version.ref} as recorded ({', '.join(wrong)} differ); "
                f"verify {version.ref} again"
            )
        check_submitted_serving(report, lambda: self.catalog.read_headers(manifest))  # derived here, not trusted
        try:
            skew = abs((parse_iso(report.created_at) - parse_iso(self.clock())).total_seconds())
        except (ValueError, TypeError):
            skew = float("inf")
        if skew > SIGNATURE_WINDOW_S:
            raise InvalidInput(
                f"the verification report's time {report.created_at!r} is not within {SIGNATURE_WINDOW_S} s of the "
                "server's; check this machine's clock and verify again"
            )
        key = _settings_key(report)
        stored = None
        if key is not None and report.base_fingerprint is not None:
            with self.store.read() as records:
                stored = records.probe_reference(version.id, report.base_fingerprint, key)
        compared = dict(report.reference) if report.reference is not None else None
        if (reference_note(stored, key) if stored is not None and key is not None else None) != compared:
            raise Conflict(
                f"the probe reference recorded for {version.ref} on this base and load setting is not the one the "
                "report was compared with (another verification recorded one meanwhile); verify again"
            )
        probe = None
        if sample is not None:
            if stored is not None or key is None or not report.passed or report.base_fingerprint is None:
                raise InvalidInput(
                    "a probe reference is recorded only by the first passing load check for a base and load setting; "
                    "this report cannot record one"
                )
            try:
                probe = ProbeSample.from_dict(dict(sample))
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(f"the probe sample is malformed ({type(exc).__name__}: {exc})") from None
        return self.record(actor, version, report, probe, key, signer)

    def record(
        self,
        actor: Actor,
        version: StoredVersion,
        report: VerificationReport,
        sample: Any,
        settings_key: str | None,
        signer: Signer | None = None,
    ) -> VerificationReport:
        """Store a report (and, for a first passing load, its probe reference) with its audit event,
        signed by the actor when the policy in force requires signatures: the signature covers the
        report's digest, so a verification nobody ran cannot be added to a version."""
        with self.store.write() as records:
            fields = {"action": "verify", "ref": version.ref, "digest": version.digest, "report": report.report_digest,
                      "passed": report.passed, "actor": actor.name, "at": report.created_at}  # fmt: skip
            signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
            report_id = records.insert_verification(version.id, report)
            if sample is not None and settings_key is not None and report.base_fingerprint is not None:
                records.insert_probe_reference(
                    version.id,
                    report_id,
                    report.base_fingerprint,
                    settings_key,
                    sample.to_dict(),
                    sample.digest,
                    report.created_at,
                    actor.name,
                )
            self.audit.append(
                records,
                actor,
                "verify",
                report.ref,
                {
                    "report": report_id,
                    "mode": report.mode,
                    "passed": report.passed,
                    "base_fingerprint": report.base_fingerprint,
                    "failed": [c.name for c in report.failures],
                    "report_digest": report.report_digest,
                },
                signed=signed,
            )
        return VerificationReport.from_dict(report.to_dict(), id=report_id)


@dataclass(frozen=True)
class _Load:
    """A load check that ran: its settings, outcome, and the reference it was compared with."""

    settings: Any  # loadcheck.LoadSettings (torch-free module, imported lazily like the rest)
    outcome: Any  # loadcheck.LoadOutcome
    reference_note: dict[str, Any] | None
    checks: tuple[Check, ...]

    def report_fields(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "device": self.settings.device,
            "device_name": o.device_name,
            "quantization": self.settings.to_dict(),
            "libraries": o.libraries,
            "load_seconds": o.load_seconds,
            "peak_memory_bytes": o.peak_memory_bytes,
            "peak_memory_kind": o.peak_memory_kind,
            "reference": self.reference_note,
        }


def _settings_key(report: VerificationReport) -> str | None:
    """The load settings' key of a report that ran the load check (as LoadSettings.key), else None."""
    from registry.verification.loadcheck import LoadSettings

    q = report.quantization
    if report.mode == "static" or q is None:
        return None
    try:
        dq = q["double_quant"]
        return LoadSettings(str(q["device_type"]), str(q["method"]), dq, str(q["compute_dtype"])).key
    except (KeyError, TypeError):
        raise InvalidInput("the verification report names no complete load setting (quantization)") from None
