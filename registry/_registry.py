"""The facade: everything a user can do is a method of :class:`Registry`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._io import Progress, atomic_write_bytes
from registry.audit.log import AuditLog
from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.catalog.results import ListFilter, PullResult, PushResult
from registry.catalog.service import Catalog
from registry.domain import signing
from registry.domain.audit import Event
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.refs import Ref, validate_name
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, VersionInfo, VersionSummary
from registry.errors import InvalidInput, InvalidMetadata, PermissionDenied
from registry.filehashes import FileHashCache
from registry.identity import Identity, UserInfo
from registry.settings import Settings
from registry.storage import records
from registry.storage.blobs.local import BlobStore
from registry.storage.db import Database
from registry.types import REPORT_FORMATS

if TYPE_CHECKING:  # built on first use: `adapters ls` and `show` need none of these
    from registry.governance.results import ActionResult, ChannelState, PolicyCheck
    from registry.governance.service import Governance
    from registry.merge.results import MergeResult
    from registry.merge.service import Merger
    from registry.policies import ActivePolicy, Policies
    from registry.verification.service import Verifier

__all__ = ["Registry"]

RefLike = str | Ref
DatasetLike = str | Mapping[str, Any] | Dataset
MetaLike = str | os.PathLike[str] | Mapping[str, Any] | PushMetadata


def _ref(ref: RefLike) -> Ref:
    return ref if isinstance(ref, Ref) else Ref.parse(ref)


def _dataset(value: DatasetLike) -> Dataset:
    if isinstance(value, Dataset):
        return value
    if isinstance(value, str):
        return Dataset.parse(value)
    return Dataset.from_mapping(value)


def _evals(values: Mapping[str, float] | Iterable[str | Evaluation]) -> tuple[Evaluation, ...]:
    if isinstance(values, Mapping):
        return tuple(Evaluation(metric=k, value=float(v)) for k, v in values.items())
    return tuple(v if isinstance(v, Evaluation) else Evaluation.parse(v) for v in values)


def _meta(value: MetaLike | None) -> PushMetadata:
    if value is None:
        return PushMetadata()
    if isinstance(value, PushMetadata):
        return value
    if isinstance(value, Mapping):
        return PushMetadata.from_mapping(value)
    return PushMetadata.from_file(Path(value))


class Registry:
    """A registry of PEFT adapters: one metadata database and one blob store.

    >>> reg = Registry()                       # ADAPTERS_HOME / ADAPTERS_DB / ADAPTERS_STORE
    >>> reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B")
    >>> reg.pull("support-summarizer:1", "./adapter")
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        db: str | None = None,
        store: str | os.PathLike[str] | None = None,
        user: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        s = settings or Settings.from_env(home)
        if db is not None:
            s = replace(s, db_url=db)
        if store is not None:
            s = replace(s, store=os.fspath(store))
        if user is not None:
            s = replace(s, user=user)
        self.settings = s
        self._db = Database(s.db_url)
        self._store = BlobStore(s.store)
        self._hashes = FileHashCache(s.cache_dir)
        self._audit = AuditLog(self._db, s.registry_key or s.home / "keys" / "registry.key", s.home / "checkpoints")
        self._identity = Identity(self._db, self._audit, s.user)
        self._catalog = Catalog(self._db, self._store, self._hashes, self._identity, self._audit)

    @cached_property
    def _policies(self) -> Policies:
        from registry.policies import Policies

        return Policies(self._db, self._identity, self._audit)

    @cached_property
    def _verifier(self) -> Verifier:
        from registry.verification.service import Verifier

        return Verifier(self._catalog, self._hashes, self._audit)

    @cached_property
    def _governance(self) -> Governance:
        from registry.governance.service import Governance

        return Governance(self._catalog, self._verifier, self._identity, self._policies, self._audit, self.settings.key)

    @cached_property
    def _merger(self) -> Merger:
        from registry.merge.service import Merger

        return Merger(self._catalog, self._hashes)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hashes.close()
        self._db.dispose()

    @property
    def user(self) -> str:
        return self.settings.user

    def describe(self) -> dict[str, str]:
        """Where this registry keeps its data (passwords hidden)."""
        return {"db": self._db.redacted_url, "store": str(self._store.root), "user": self.user}

    # -- catalog --------------------------------------------------------------------------

    def push(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        base: str | None = None,
        base_revision: str | None = None,
        quantization: str | Mapping[str, Any] | Quantization | None = None,
        datasets: Iterable[DatasetLike] = (),
        evals: Mapping[str, float] | Iterable[str | Evaluation] = (),
        meta: MetaLike | None = None,
        training: Mapping[str, Any] | None = None,
        description: str | None = None,
        parent: RefLike | None = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """Store the adapter directory ``path`` as the next version of ``name``.

        ``meta`` (a YAML/JSON file path or a mapping) gives the same facts as the keyword
        arguments; the keyword arguments win.
        """
        if training is not None and not isinstance(training, Mapping):
            raise InvalidMetadata("training must be a mapping of parameter to value", "training")
        flags = PushMetadata(
            base=base,
            base_revision=base_revision,
            quantization=Quantization.parse(quantization) if quantization is not None else None,
            datasets=tuple(_dataset(d) for d in datasets),
            evals=_evals(evals),
            training=training,
            description=description,
            parent=str(parent) if parent is not None else None,
        )
        merged = _meta(meta).overridden_by(flags)
        return self._catalog.push(path, name, merged, progress)

    def pull(
        self,
        ref: RefLike,
        out: str | os.PathLike[str],
        *,
        force: bool = False,
        allow_revoked: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """Write the version ``ref`` to the directory ``out``, re-hashing every file.

        A revoked version is refused unless ``allow_revoked``.
        """
        return self._catalog.pull(
            _ref(ref), out, force=force, progress=progress, registry_info=self.describe(), allow_revoked=allow_revoked
        )

    def ls(
        self,
        pattern: str | None = None,
        *,
        base: str | None = None,
        peft_type: str | None = None,
        min_rank: int | None = None,
        max_rank: int | None = None,
        quantization: str | None = None,
        latest: bool = False,
    ) -> list[VersionSummary]:
        """One entry per version (or per adapter's latest version with ``latest=True``), filtered."""
        return self._catalog.list(
            ListFilter(
                pattern=pattern,
                base=base,
                peft_type=peft_type,
                min_rank=min_rank,
                max_rank=max_rank,
                quantization=quantization,
                latest=latest,
            )
        )

    def show(self, ref: RefLike) -> VersionInfo:
        """Every fact recorded about one version: evals, verifications, approvals, history, channels."""
        with self._db.read() as session:
            row = self._catalog.resolve_row(session, _ref(ref))
            info = self._catalog.version_info(session, row)
            keys = self._identity.keys_by_fingerprint
            return replace(
                info,
                verifications=records.verification_reports(session, row.id),
                approvals=tuple(records.approvals(session, row.id, keys)),
                history=tuple(records.transitions(session, row.id)),
                channels=tuple(records.current_channels(session, row.adapter_id, row.id)),
                releases=tuple(
                    m for m in records.channel_moves(session, row.adapter_id, keys) if m.version == row.number
                ),
            )

    def add_evals(
        self,
        ref: RefLike,
        metrics: Mapping[str, float] | Iterable[str | Evaluation],
        *,
        dataset: str | None = None,
    ) -> tuple[str, tuple[EvalRecord, ...]]:
        """Append evaluation results (``{"accuracy": 0.91}`` or ``["accuracy=0.91"]``) to a version."""
        evals = tuple(replace(e, dataset=dataset) if dataset is not None else e for e in _evals(metrics))
        return self._catalog.add_evals(_ref(ref), evals)

    # -- verification ---------------------------------------------------------------------

    def verify(
        self,
        ref: RefLike,
        base: str | None = None,
        *,
        mode: str = "all",
        device: str = "auto",
        quant: str = "nf4",
        double_quant: bool = True,
        compute_dtype: str | None = None,
        allow_base_mismatch: bool = False,
    ) -> VerificationReport:
        """Check that version ``ref`` fits ``base`` (default: the recorded base, if it is on this machine).

        ``mode``: ``static`` (safetensors headers only), ``load`` (a real load on a 4-bit base with
        peft and a probe input) or ``all``. The report is stored with the version whatever its
        outcome; ``report.passed`` says whether every check passed.
        """
        from registry.verification.service import VerifyOptions

        options = VerifyOptions(
            mode=mode,
            device=device,
            quant=quant,
            double_quant=double_quant,
            compute_dtype=compute_dtype,
            allow_base_mismatch=allow_base_mismatch,
        )
        return self._verifier.verify(_ref(ref), base, options)

    # -- lifecycle and releases --------------------------------------------------------------

    def review(self, ref: RefLike, *, comment: str | None = None) -> ActionResult:
        """Submit a draft for review."""
        return self._governance.review(_ref(ref), comment)

    def approve(
        self, ref: RefLike, *, comment: str | None = None, key: str | os.PathLike[str] | None = None
    ) -> ActionResult:
        """Approve under the active policy (signed with ``key`` or ``ADAPTERS_KEY`` when it requires)."""
        return self._governance.decide(_ref(ref), "approve", comment, _path(key))

    def reject(self, ref: RefLike, *, comment: str, key: str | os.PathLike[str] | None = None) -> ActionResult:
        """Reject a version in review; final for that version."""
        if not comment or not comment.strip():
            raise InvalidInput("a rejection needs a comment (--comment TEXT) saying why")
        return self._governance.decide(_ref(ref), "reject", comment, _path(key))

    def release(
        self,
        ref: RefLike,
        *,
        channel: str,
        key: str | os.PathLike[str] | None = None,
        reason: str | None = None,
        merge: bool = False,
        base: str | None = None,
        out: str | os.PathLike[str] | None = None,
        dtype: str | None = None,
        base_precision: str = "original",
        allow_base_mismatch: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> ActionResult:
        """Point ``channel`` at the version if the channel's policy allows it.

        With ``merge=True`` the adapter is merged into ``base`` (see :meth:`merge`) and written to
        ``out`` first; the release is recorded only once that directory is complete, with the merged
        files' sha256, the base fingerprint, the method and the dtype.
        """
        concrete = self._concrete(ref)
        if not merge:
            return self._governance.release(concrete, channel, _path(key), reason)
        if out is None:
            raise InvalidInput("a release with --merge needs --out DIR for the merged checkpoint")
        from registry.merge.results import MergeOptions

        target = Path(out).expanduser().absolute()
        options = MergeOptions(
            dtype=dtype, base_precision=base_precision, allow_base_mismatch=allow_base_mismatch, force=force
        )
        made: list[Any] = []

        def prepare() -> dict[str, Any]:
            result = self._merger.merge(concrete, base, target, options, progress)
            made.append(result)
            return {**result.release_details(), "warnings": list(result.warnings)}

        def discard() -> None:
            if made:
                shutil.rmtree(target, ignore_errors=True)

        return self._governance.release(concrete, channel, _path(key), reason, prepare=prepare, discard=discard)

    def merge(
        self,
        ref: RefLike,
        *,
        out: str | os.PathLike[str],
        base: str | None = None,
        dtype: str | None = None,
        base_precision: str = "original",
        allow_base_mismatch: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> MergeResult:
        """Fold version ``ref`` into its base and write a model directory to ``out``.

        Streams the base shard by shard (memory about one tensor plus the adapter), keeps its
        sharding, index, config and tokenizer, and equals peft's ``merge_and_unload``. ``dtype``
        (bfloat16, float16, float32) casts the floating tensors; ``base_precision="nf4-dequantized"``
        merges into dequantize(quantize(W)) for adapters trained on a 4-bit base.
        """
        from registry.merge.results import MergeOptions

        options = MergeOptions(
            dtype=dtype, base_precision=base_precision, allow_base_mismatch=allow_base_mismatch, force=force
        )
        return self._merger.merge(self._concrete(ref), base, Path(out), options, progress, check=self._not_revoked)

    def _concrete(self, ref: RefLike) -> Ref:
        """``NAME:N`` for any reference, so that one operation sees one version throughout."""
        parsed = _ref(ref)
        with self._db.read() as session:
            row = self._catalog.resolve_row(session, parsed)
        return Ref(parsed.name, version=row.number)

    def _not_revoked(self, row: Any) -> None:
        with self._db.read() as session:
            if records.version_states(session, [row.id])[row.id] == "revoked":
                raise PermissionDenied(
                    f"version {row.digest[:19]}… is revoked; a revoked version is not merged", self.user
                )

    def rollback(
        self,
        name: str,
        *,
        channel: str,
        to: int | None = None,
        key: str | os.PathLike[str] | None = None,
        reason: str | None = None,
    ) -> ActionResult:
        """Move ``channel`` back to the version it pointed to before (or to version ``to``)."""
        return self._governance.rollback(validate_name(name), channel, to, _path(key), reason)

    def deprecate(self, ref: RefLike, *, reason: str | None = None) -> ActionResult:
        return self._governance.deprecate(_ref(ref), reason)

    def revoke(self, ref: RefLike, *, reason: str) -> ActionResult:
        """Revoke a version: it is refused by pull and can never be a channel's target again."""
        return self._governance.revoke(_ref(ref), reason)

    def channels(self, name: str) -> list[ChannelState]:
        """Each channel of an adapter: its current version and its full history."""
        return self._governance.channels(validate_name(name))

    # -- policies ----------------------------------------------------------------------------

    def set_policy(self, path: str | os.PathLike[str], *, channel: str | None = None) -> ActivePolicy:
        """Make a policy file active for the registry, or for one channel. Admins only."""
        return self._policies.set(Path(path), channel)

    def policy(self, *, channel: str | None = None) -> ActivePolicy:
        """The policy in force (for a channel: its own, else the registry's, else the built-in default)."""
        return self._policies.show(channel)

    def check_policy(self, ref: RefLike, *, channel: str | None = None) -> PolicyCheck:
        """Every rule of the active policy against a version (``channel``: as if releasing there)."""
        return self._governance.check(_ref(ref), channel)

    # -- users and keys ----------------------------------------------------------------------

    def add_user(
        self, name: str, *, roles: Iterable[str] = (), public_key: str | os.PathLike[str] | None = None
    ) -> UserInfo:
        """Register a user, grant roles and register their public key. Admins only."""
        pem = None
        if public_key is not None:
            try:
                pem = Path(public_key).read_bytes()
            except OSError as exc:
                raise InvalidInput(f"cannot read public key {public_key}: {exc.strerror or exc}") from None
        return self._identity.add(name, list(roles), pem)

    def users(self) -> list[UserInfo]:
        return self._identity.list()

    @staticmethod
    def generate_key(out: str | os.PathLike[str], name: str) -> dict[str, str]:
        """Write an Ed25519 key pair ``NAME.key`` (mode 0600) and ``NAME.pub`` into ``out``."""
        directory = Path(out).expanduser()
        private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
        if private_path.exists():
            raise InvalidInput(
                f"{private_path} already exists; choose another --out or --name (keys are never overwritten)"
            )
        private, public = signing.generate_keypair()
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(private_path, private)
        os.chmod(private_path, 0o600)
        atomic_write_bytes(public_path, public)
        return {
            "private_key": str(private_path),
            "public_key": str(public_path),
            "fingerprint": signing.fingerprint(public),
        }

    # -- audit -------------------------------------------------------------------------------

    def audit_log(self, ref: RefLike | None = None) -> list[Event]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        if ref is None:
            return self._audit.events()
        parsed = _ref(ref)
        if parsed.version is None and parsed.channel is None and parsed.digest is None:
            return self._audit.events(parsed.name)
        with self._db.read() as session:
            row = self._catalog.resolve_row(session, parsed)
        return self._audit.events(f"{parsed.name}:{row.number}")

    def audit_checkpoint(self, out: str | os.PathLike[str]) -> Checkpoint:
        """Write a checkpoint of the log signed with the registry key (auditors and admins)."""
        with self._db.write() as session:
            self._identity.require(session, "audit checkpoint")
        return self._audit.checkpoint(Path(out))

    def audit_report(
        self,
        subject: str | None = None,
        *,
        format: str = "html",
        since: str | None = None,
        until: str | None = None,
        checkpoints: Iterable[str | os.PathLike[str]] = (),
    ) -> AuditReport:
        """The audit report of the registry, one adapter (``NAME``) or one version (``NAME:N``).

        ``format`` is ``html`` (one self-contained file), ``md`` or ``json``. ``since``/``until``
        (``YYYY-MM-DD`` or ISO-8601) limit it to versions created and records made in that window.
        The audit chain is verified at report time against ``checkpoints`` (default: the latest
        checkpoint written on this machine).
        """
        from registry.audit.report import build as builder

        if format not in REPORT_FORMATS:
            raise InvalidInput(f"unknown report format {format!r}; use {', '.join(REPORT_FORMATS)}")
        scope = builder.ReportScope(subject, builder.parse_when(since), builder.parse_when(until, end_of_day=True))
        with self._db.read() as session:
            data = builder.build(
                session,
                self._catalog,
                self._policies,
                self._audit,
                scope,
                [Path(c) for c in checkpoints],
                self.describe(),
                self.user,
            )
        if format == "json":
            sealed = builder.seal(data)
            return AuditReport(
                "json", json.dumps(sealed, indent=2, ensure_ascii=False) + "\n", sealed, sealed["report_sha256"]
            )
        if format == "md":
            from registry.audit.report.markdown import FOOTER_MARKER, render_markdown

            content = render_markdown(data)
        else:
            from registry.audit.report.html import FOOTER_MARKER, render_html

            content = render_html(data)
        digest = hashlib.sha256(content[: content.index(FOOTER_MARKER)].encode("utf-8")).hexdigest()
        return AuditReport(format, content, data, "sha256:" + digest)

    def audit_verify(self, checkpoints: Iterable[str | os.PathLike[str]] = ()) -> AuditVerification:
        """Recompute the audit chain and check checkpoints; ``ok`` is False with the first bad event named."""
        return self._audit.verify([Path(c) for c in checkpoints])


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value).expanduser() if value is not None else None
