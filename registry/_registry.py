"""The facade: everything a user can do is a method of :class:`Registry`.

Each method coerces its arguments (strings to references, paths to key signers, mappings to
metadata) and makes one call into a concept package; the use cases, records and rules live there.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._facade._base import DatasetLike, MetaLike, PathLike, RefLike, ref_of
from registry._facade.annotations import AnnotationMethods
from registry._facade.people import PeopleMethods
from registry._io import Progress
from registry.audit.keys import RegistryKeys
from registry.audit.log import AuditLog
from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.catalog.results import ListFilter, MetricCondition, PullResult, PushResult
from registry.catalog.service import Catalog
from registry.domain.actor import Actor
from registry.domain.annotations import parse_tag
from registry.domain.audit import Event
from registry.domain.clock import Clock, now_iso
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.refs import validate_name
from registry.domain.signing import KeyFileSigner, Signer
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, VersionInfo, VersionSummary
from registry.errors import InvalidInput, InvalidMetadata
from registry.filehashes import FileHashCache
from registry.identity import Identity
from registry.settings import Settings
from registry.storage.blobs import BlobStore, open_blob_store
from registry.storage.db import Database
from registry.storage.records import RecordStore

if TYPE_CHECKING:  # built on first use: `adapters ls` and `show` need none of these
    from registry.audit.service import Auditor
    from registry.audit.trust import TrustAnchor
    from registry.governance.channels import Channels
    from registry.governance.results import ActionResult, ChannelState, PolicyCheck
    from registry.governance.service import Governance
    from registry.merge.results import MergeResult
    from registry.merge.service import Merger
    from registry.policies import ActivePolicy, Policies
    from registry.verification.service import Verifier

__all__ = ["Registry"]

_ref = ref_of


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


def _path(value: PathLike | None) -> Path | None:
    return Path(value).expanduser() if value is not None else None


def _public_key(path: PathLike | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read public key {path}: {exc.strerror or exc}") from None


class Registry(PeopleMethods, AnnotationMethods):
    """A registry of PEFT adapters: one metadata database and one blob store.

    >>> reg = Registry()                       # ADAPTERS_HOME / ADAPTERS_DB / ADAPTERS_STORE
    >>> reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B")
    >>> reg.pull("support-summarizer:1", "./adapter")

    ``blob_store`` replaces the store ``ADAPTERS_STORE`` names (any :class:`BlobStore`), ``clock``
    the function that gives the time records carry. The actor is ``user`` (else ``ADAPTERS_USER``);
    :meth:`acting_as` gives a view of the same registry acting as someone else.
    """

    def __init__(
        self,
        home: PathLike | None = None,
        *,
        db: str | None = None,
        store: PathLike | None = None,
        user: str | None = None,
        settings: Settings | None = None,
        blob_store: BlobStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        s = settings or Settings.from_env(home)
        if db is not None:
            s = replace(s, db_url=db)
        if store is not None:
            s = replace(s, store=os.fspath(store))
        if user is not None:
            s = replace(s, user=user)
        self.settings = s
        self._actor = Actor(s.user)
        self._clock: Clock = clock or now_iso
        self._db = Database(s.db_url)
        self._records = RecordStore(self._db)
        self._blobs: BlobStore = blob_store if blob_store is not None else open_blob_store(s.store)
        self._hashes = FileHashCache(s.cache_dir)
        self._audit = AuditLog(self._records, RegistryKeys(s.registry_key, s.home, s.state_dir), self._clock)
        self._identity = Identity(self._records, self._audit, self._clock)
        self._catalog = Catalog(self._records, self._blobs, self._hashes, self._identity, self._audit, self._clock)

    @cached_property
    def _policies(self) -> Policies:
        from registry.policies import Policies

        return Policies(self._records, self._identity, self._audit, self._clock)

    @cached_property
    def _verifier(self) -> Verifier:
        from registry.verification.service import Verifier

        return Verifier(self._catalog, self._hashes, self._audit, self._clock)

    @cached_property
    def _governance(self) -> Governance:
        from registry.governance.service import Governance

        return Governance(self._records, self._identity, self._policies, self._audit, self._clock)

    @cached_property
    def _channels(self) -> Channels:
        from registry.governance.channels import Channels

        return Channels(self._governance)

    @cached_property
    def _merger(self) -> Merger:
        from registry.merge.service import Merger

        return Merger(self._catalog, self._hashes)

    @cached_property
    def _auditor(self) -> Auditor:
        from registry.audit.service import Auditor

        trust_dir = self.settings.config_dir / "trust"
        return Auditor(self._records, self._audit, self._identity, self._policies, self._blobs, self._clock, trust_dir)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hashes.close()
        self._blobs.close()
        self._db.dispose()

    @property
    def user(self) -> str:
        return self._actor.name

    @property
    def actor(self) -> Actor:
        return self._actor

    def acting_as(self, actor: Actor | str) -> Registry:
        """This registry (the same database, store and services) acting as ``actor``.

        The view shares everything with this object; close this one, not the view.
        """
        view = copy.copy(self)
        view._actor = actor if isinstance(actor, Actor) else Actor(actor)
        return view

    def describe(self) -> dict[str, str]:
        """Where this registry keeps its data (passwords hidden)."""
        return {"db": self._db.redacted_url, "store": self._blobs.url, "user": self.user}

    def _signer(self, key: PathLike | None) -> Signer | None:
        path = _path(key) or self.settings.key
        return KeyFileSigner(path) if path is not None else None

    # -- catalog --------------------------------------------------------------------------

    def push(
        self,
        path: PathLike,
        *,
        name: str,
        base: str | None = None,
        base_name: str | None = None,
        base_revision: str | None = None,
        allow_unverified_base: bool = False,
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
        arguments; the keyword arguments win. ``base`` is a directory or a Hub id; ``base_name``
        names it (its Hub id) when ``base`` is a directory. A base directory without weight files
        is refused unless ``allow_unverified_base`` (recorded).
        """
        if training is not None and not isinstance(training, Mapping):
            raise InvalidMetadata("training must be a mapping of parameter to value", "training")
        flags = PushMetadata(
            base=base,
            base_name=base_name,
            base_revision=base_revision,
            allow_unverified_base=allow_unverified_base,
            quantization=Quantization.parse(quantization) if quantization is not None else None,
            datasets=tuple(_dataset(d) for d in datasets),
            evals=_evals(evals),
            training=training,
            description=description,
            parent=str(parent) if parent is not None else None,
        )
        return self._catalog.push(self._actor, path, name, _meta(meta).overridden_by(flags), progress)

    def pull(
        self,
        ref: RefLike,
        out: PathLike,
        *,
        force: bool = False,
        allow_revoked: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """Write the version ``ref`` to the directory ``out``, re-hashing every file.

        A revoked version is refused unless ``allow_revoked``.
        """
        return self._catalog.pull(
            self._actor, _ref(ref), out, force, progress, registry_info=self.describe(), allow_revoked=allow_revoked
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
        state: str | None = None,
        channel: str | None = None,
        where: Iterable[str | MetricCondition] = (),
        tags: Mapping[str, str] | Iterable[str] = (),
    ) -> list[VersionSummary]:
        """One entry per version (or per adapter's latest version with ``latest=True``), filtered; each
        with the channels that point to it and its tags. ``where``: conditions on the latest value of a
        metric (``"accuracy>=0.9"``, ``"loss@holdout<0.3"``); ``tags``: ``KEY=VALUE`` the version has now."""
        conditions = tuple(c if isinstance(c, MetricCondition) else MetricCondition.parse(c) for c in where)
        pairs = dict(tags) if isinstance(tags, Mapping) else dict(parse_tag(t) for t in tags)
        return self._catalog.list(
            ListFilter(
                pattern, base, peft_type, min_rank, max_rank, quantization=quantization, latest=latest,
                state=state, channel=channel, where=conditions, tags=tuple(sorted(pairs.items())),
            )
        )  # fmt: skip

    def show(self, ref: RefLike) -> VersionInfo:
        """Every fact recorded about one version: evals, verifications, approvals, history, channels."""
        return self._catalog.show(_ref(ref))

    def add_evals(
        self,
        ref: RefLike,
        metrics: Mapping[str, float] | Iterable[str | Evaluation],
        *,
        dataset: str | None = None,
        key: PathLike | None = None,
    ) -> tuple[str, tuple[EvalRecord, ...]]:
        """Append evaluation results (``{"accuracy": 0.91}`` or ``["accuracy=0.91"]``) to a version."""
        evals = tuple(replace(e, dataset=dataset) if dataset is not None else e for e in _evals(metrics))
        return self._catalog.add_evals(self._actor, _ref(ref), evals, self._signer(key))

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
        key: PathLike | None = None,
    ) -> VerificationReport:
        """Check that version ``ref`` fits ``base`` (default: the recorded base, if it is on this machine).

        ``mode``: ``static`` (safetensors headers only), ``load`` (a real load on a 4-bit base with
        peft and a probe input) or ``all``. The report is stored with the version whatever its
        outcome; ``report.passed`` says whether every check passed.
        """
        from registry.verification.service import VerifyOptions

        options = VerifyOptions(mode, device, quant, double_quant, compute_dtype, allow_base_mismatch)
        return self._verifier.verify(self._actor, _ref(ref), base, options, self._signer(key))

    # -- lifecycle and releases --------------------------------------------------------------

    def review(self, ref: RefLike, *, comment: str | None = None, key: PathLike | None = None) -> ActionResult:
        """Submit a draft for review."""
        return self._governance.review(self._actor, _ref(ref), comment, self._signer(key))

    def approve(self, ref: RefLike, *, comment: str | None = None, key: PathLike | None = None) -> ActionResult:
        """Approve under the policy in force (signed with ``key`` or ``ADAPTERS_KEY`` when it requires)."""
        return self._governance.decide(self._actor, _ref(ref), "approve", comment, self._signer(key))

    def reject(self, ref: RefLike, *, comment: str, key: PathLike | None = None) -> ActionResult:
        """Reject a version in review; final for that version."""
        if not comment or not comment.strip():
            raise InvalidInput("a rejection needs a comment (--comment TEXT) saying why")
        return self._governance.decide(self._actor, _ref(ref), "reject", comment, self._signer(key))

    def release(
        self,
        ref: RefLike,
        *,
        channel: str,
        key: PathLike | None = None,
        reason: str | None = None,
        merge: bool = False,
        base: str | None = None,
        out: PathLike | None = None,
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
        if not merge:
            return self._channels.release(self._actor, _ref(ref), channel, self._signer(key), reason)
        if out is None:
            raise InvalidInput("a release with --merge needs --out DIR for the merged checkpoint")
        from registry.governance.release import release_merged
        from registry.merge.results import MergeOptions

        options = MergeOptions(dtype, base_precision, allow_base_mismatch, force)
        return release_merged(
            self._channels, self._merger, self._actor, _ref(ref), channel, self._signer(key), reason, base,
            Path(out), options, progress,
        )  # fmt: skip

    def merge(
        self,
        ref: RefLike,
        *,
        out: PathLike,
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
        from registry.governance.release import concrete
        from registry.merge.results import MergeOptions

        options = MergeOptions(dtype, base_precision, allow_base_mismatch, force)
        pinned = concrete(self._records, _ref(ref))
        return self._merger.merge(self._actor, pinned, base, Path(out), options, progress)

    def rollback(
        self,
        name: str,
        *,
        channel: str,
        to: int | None = None,
        key: PathLike | None = None,
        reason: str | None = None,
    ) -> ActionResult:
        """Move ``channel`` back to the version it pointed to before (or to version ``to``)."""
        return self._channels.rollback(self._actor, validate_name(name), channel, to, self._signer(key), reason)

    def deprecate(self, ref: RefLike, *, reason: str | None = None, key: PathLike | None = None) -> ActionResult:
        return self._governance.deprecate(self._actor, _ref(ref), reason, self._signer(key))

    def revoke(self, ref: RefLike, *, reason: str, key: PathLike | None = None) -> ActionResult:
        """Revoke a version: it is refused by pull and can never be a channel's target again."""
        return self._governance.revoke(self._actor, _ref(ref), reason, self._signer(key))

    def channels(self, name: str) -> list[ChannelState]:
        """Each channel of an adapter: its current version and its full history."""
        return self._channels.channels(validate_name(name))

    # -- policies ----------------------------------------------------------------------------

    def set_policy(self, path: PathLike, *, channel: str | None = None, key: PathLike | None = None) -> ActivePolicy:
        """Make a policy active for the registry, or for one channel: a YAML file's path, or a built-in
        policy's name (``default``, ``regulated``). Admins only."""
        return self._policies.set(
            self._actor, path if isinstance(path, str) else Path(path), channel, self._signer(key)
        )

    def policy(self, *, channel: str | None = None) -> ActivePolicy:
        """The policy in force (for a channel: its own, else the registry's, else the built-in default)."""
        return self._policies.show(channel)

    def check_policy(self, ref: RefLike, *, channel: str | None = None) -> PolicyCheck:
        """Every rule of the policy in force against a version (``channel``: as if releasing there)."""
        return self._governance.check(_ref(ref), channel)

    # -- users and keys ----------------------------------------------------------------------

    def init(self, *, admin: str, public_key: PathLike, trust_out: PathLike | None = None) -> TrustAnchor:
        """Record the registry's root of trust (its admin and their key) and write the trust file.

        On a new registry ``admin`` becomes its admin; on an existing one ``admin`` must already be
        an admin. The trust file (default ``$ADAPTERS_CONFIG_DIR/trust/REGISTRY-ID.json``) is what users
        keep outside the registry to check it later (``audit verify --trust``).
        """
        pem = _public_key(public_key)
        if pem is None:
            raise InvalidInput("give the admin's public key (--public-key FILE)")
        return self._auditor.init(admin, pem, _path(trust_out))

    # -- audit -------------------------------------------------------------------------------

    def audit_log(self, ref: RefLike | None = None) -> list[Event]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        return self._auditor.events(_ref(ref) if ref is not None else None)

    def audit_checkpoint(self, out: PathLike | Iterable[PathLike], *, force: bool = False) -> Checkpoint:
        """Write a checkpoint of the log signed with the registry key to ``out`` (one path or several),
        keep a copy in the state directory and record it in the chain. Auditors and admins."""
        outs = [Path(out)] if isinstance(out, (str, os.PathLike)) else [Path(o) for o in out]
        return self._auditor.checkpoint(self._actor, outs, force)

    def audit_report(
        self,
        subject: str | None = None,
        *,
        format: str = "html",
        since: str | None = None,
        until: str | None = None,
        checkpoints: Iterable[PathLike] = (),
    ) -> AuditReport:
        """The audit report of the registry, one adapter (``NAME``) or one version (``NAME:N``).

        ``format`` is ``html`` (one self-contained file), ``md`` or ``json``. ``since``/``until``
        (``YYYY-MM-DD`` or ISO-8601) limit it to versions created and records made in that window.
        The audit chain is verified at report time against ``checkpoints`` (default: the latest
        checkpoint written on this machine).
        """
        paths = [Path(c) for c in checkpoints]
        return self._auditor.report(self._actor, subject, format, since, until, paths, self.describe())

    def audit_verify(
        self, checkpoints: Iterable[PathLike] = (), *, trust: PathLike | None = None, blobs: str | None = None
    ) -> AuditVerification:
        """Check everything the history can prove: the chain, every known checkpoint, the trust file
        (``trust``, else the one on this machine), every fact against its event, every signature against
        the key then in force, and with ``blobs`` (``quick`` or ``full``) the blob store. ``ok`` is False
        with each problem named."""
        return self._auditor.verify([Path(c) for c in checkpoints], _path(trust), blobs)
