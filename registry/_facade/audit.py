"""The root of trust and the audit log: init, log, checkpoint, report, verify."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._facade._base import FacadeBase, PathLike, RefLike, path_of, ref_of
from registry._io import public_key_bytes
from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.domain.audit import Event
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.audit.export import AuditExport
    from registry.audit.trust import TrustAnchor

__all__ = ["AuditMethods"]


class AuditMethods(FacadeBase):
    """What proves the history."""

    def init(self, *, admin: str, public_key: PathLike, trust_out: PathLike | None = None) -> TrustAnchor:
        """Record the registry's root of trust (its admin and their key) and write the trust file.

        On a new registry ``admin`` becomes its admin; on an existing one ``admin`` must already be
        an admin. The trust file (default ``$ADAPTERS_CONFIG_DIR/trust/REGISTRY-ID.json``) is what users
        keep outside the registry to check it later (``audit verify --trust``).
        """
        pem = public_key_bytes(public_key)
        if pem is None:
            raise InvalidInput("give the admin's public key (--public-key FILE)")
        return self._auditor.init(admin, pem, path_of(trust_out))

    def audit_log(self, ref: RefLike | None = None) -> list[Event]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        return self._auditor.events(self._actor, ref_of(ref) if ref is not None else None)

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
        return self._auditor.verify([Path(c) for c in checkpoints], path_of(trust), blobs)

    def audit_key(self) -> dict[str, str | None]:
        """This registry's id and the key that signs its checkpoints: ``{registry_id, registry_key}``
        (the fingerprint) and ``registry_public_key`` (PEM), None where there is no key yet."""
        return self._auditor.key()

    def audit_export(self, *, blobs: str | None = None) -> AuditExport:
        """Everything ``audit verify`` reads, as one value a verifier elsewhere checks with its own trust
        material (:mod:`registry.audit.export`): every event and fact row as stored, the registry key in
        use, and with ``blobs`` (``quick`` or ``full``) this registry's check of its blob store."""
        return self._auditor.export(self._actor, blobs)

    def audit_report_facts(
        self, subject: str | None = None, *, since: str | None = None, until: str | None = None
    ) -> dict[str, Any]:
        """The audit report's facts (``audit_report``'s JSON form) but its integrity section, which
        whoever verifies the chain adds (:func:`registry.audit.report.build.with_integrity`)."""
        from registry.audit.report.build import ReportScope, parse_when

        scope = ReportScope(subject, parse_when(since), parse_when(until, end_of_day=True))
        return self._auditor.report_facts(self._actor, scope, self.describe())
