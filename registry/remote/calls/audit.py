"""The audit log against a server, verified here.

The registry key stays on the server: ``audit checkpoint`` asks the server to sign and record a
checkpoint, checks its signature against the key pinned at ``adapters login``, and writes the
files here (and a copy in this machine's state directory, ``$ADAPTERS_STATE_DIR/REGISTRY-ID/
checkpoints``). ``audit verify`` downloads what verification reads (:mod:`registry.audit.export`)
and runs the embedded registry's verification over it (:func:`registry.audit.verify.verify_history`)
against this client's own checkpoints, its trust file and the pinned key; a server answering with
another key is refused until the user accepts it at login. The blob store, which a client cannot
list, is checked by the server on request (``--blobs``). ``audit report`` takes the report's facts
from the server and adds the integrity section from this client's verification.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.domain.audit import Event
from registry.errors import IntegrityError, InvalidInput, PermissionDenied
from registry.remote._http import API, RemoteBase

if TYPE_CHECKING:
    from registry.audit.trust import TrustAnchor
    from registry.settings import Settings

__all__ = ["AuditCalls"]

_PathLike = str | os.PathLike[str]


class AuditCalls(RemoteBase):
    """The audit log: read there, checkpointed there and kept here, verified here."""

    def audit_log(self, ref: object = None) -> list[Event]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        rows = self._request("GET", f"{API}/audit/events", params={"ref": str(ref)} if ref is not None else {})
        return [Event.from_dict(r) for r in rows]

    def audit_checkpoint(self, out: _PathLike | Iterable[_PathLike], *, force: bool = False) -> Checkpoint:
        """Have the server record a checkpoint signed by the registry key; check it against the key pinned at
        login and write it to ``out`` (one path or several) and to this machine's state directory."""
        from registry.audit.log import AuditLog, kept_copy, refuse_existing

        outs = [Path(out)] if isinstance(out, (str, os.PathLike)) else [Path(o) for o in out]
        refuse_existing(outs, force)
        key = self._request("GET", f"{API}/audit/key")
        registry_id = str(key["registry_id"])
        public = self._trusted_key(registry_id, key.get("registry_key"), key.get("registry_public_key"), None)
        if public is None:
            raise PermissionDenied(self._no_key(registry_id, "nothing was recorded"))
        checkpoint = Checkpoint.from_dict(self._request("POST", f"{API}/audit/checkpoints"))
        if not _signed_by(checkpoint, public, registry_id):
            raise IntegrityError(
                f"the checkpoint {self.url} answered is not signed by the registry key pinned at login "
                f"({key.get('registry_key')}); nothing was written: ask the server's operator"
            )
        kept = kept_copy(self._checkpoint_dir(registry_id), checkpoint.at, checkpoint.size)
        written = replace(checkpoint, path=outs[0] if outs else kept, paths=(*outs, kept))
        AuditLog.write_files(written)
        return written

    def audit_verify(
        self, checkpoints: Iterable[_PathLike] = (), *, trust: _PathLike | None = None, blobs: str | None = None
    ) -> AuditVerification:
        """Verify the server's history here, as the embedded registry verifies its own: against the checkpoints
        given and kept on this machine, the trust file (``trust``, else this machine's for the registry) and
        the registry key pinned at login. With ``blobs`` (``quick``, ``full``) the server checks its store."""
        from registry.audit.export import AuditExport
        from registry.audit.trust import TrustAnchor
        from registry.audit.verify import Trusted, known_checkpoints, verify_history

        given = [Path(c) for c in checkpoints]
        anchor = TrustAnchor.load(Path(trust)) if trust is not None else None
        export = AuditExport.from_dict(
            self._request("GET", f"{API}/audit/export", params={"blobs": blobs} if blobs is not None else {})
        )
        if anchor is None:
            anchor = self._default_trust(export.registry_id)
        public = self._trusted_key(export.registry_id, export.registry_key, export.registry_public_key, anchor)
        if public is None and anchor is None:
            raise PermissionDenied(self._no_key(export.registry_id, "nothing was verified"))
        paths = known_checkpoints(given, [self._checkpoint_dir(export.registry_id)])
        return verify_history(export, Trusted(public, paths, len(given), anchor), export.blobs)

    def audit_report(
        self,
        subject: str | None = None,
        *,
        format: str = "html",
        since: str | None = None,
        until: str | None = None,
        checkpoints: Iterable[_PathLike] = (),
    ) -> AuditReport:
        """The audit report, as the embedded registry writes it: its facts from the server, its integrity
        section from this client's own verification (:meth:`audit_verify` with ``blobs="quick"``)."""
        from registry.audit.report.build import parse_when, with_integrity
        from registry.audit.report.render import render
        from registry.types import REPORT_FORMATS

        if format not in REPORT_FORMATS:
            raise InvalidInput(f"unknown report format {format!r}; use {', '.join(REPORT_FORMATS)}")
        parse_when(since)  # a bad date is refused here, as embedded, before any request
        parse_when(until, end_of_day=True)
        integrity = self.audit_verify(checkpoints, blobs="quick")
        params = {k: v for k, v in (("subject", subject), ("since", since), ("until", until)) if v is not None}
        facts = self._request("GET", f"{API}/audit/report", params=params)
        return render(with_integrity(facts, integrity), format)

    # -- this client's trust material ------------------------------------------------------------------

    def _local(self) -> Settings:
        from registry.settings import Settings

        return self._settings if self._settings is not None else Settings.from_env()

    def _checkpoint_dir(self, registry_id: str) -> Path:
        """Where this machine keeps the checkpoints it wrote of that registry (as the embedded registry does)."""
        return self._local().state_dir / registry_id / "checkpoints"

    def _default_trust(self, registry_id: str) -> TrustAnchor | None:
        from registry.audit.trust import TrustAnchor

        path = self._local().config_dir / "trust" / f"{registry_id}.json"
        return TrustAnchor.load(path) if path.is_file() else None

    def _no_key(self, registry_id: str, outcome: str) -> str:
        return (
            f"no registry key is pinned for {self.url} (registry {registry_id}) on this machine, so its checkpoints "
            f"cannot be checked here; {outcome}. Run `adapters login {self.url}` (it pins the key), or give the "
            "trust file `adapters init` wrote (--trust FILE)"
        )

    def _trusted_key(
        self, registry_id: str, fingerprint: str | None, pem: str | None, anchor: TrustAnchor | None
    ) -> bytes | None:
        """The registry key this client trusts: the one pinned at login, once the server's key is that one
        (another is refused); None when none is pinned (the trust file's key is then the one checked)."""
        from registry.domain import signing
        from registry.remote.credentials import Credentials

        login = Credentials(self._local().config_dir).get(self.url)
        pinned = login.registry_key if login is not None else None
        if pinned is None:
            return None
        accept = f"`adapters login {self.url} --accept-new-registry-key`"
        if login is not None and login.registry_id and login.registry_id != registry_id:
            raise PermissionDenied(
                f"{self.url} answers as registry {registry_id}, not {login.registry_id} as when you logged in: another "
                f"server may answer at that address. Ask its operator, then run {accept} if the change is expected"
            )
        if fingerprint != pinned:
            raise PermissionDenied(
                f"{self.url} now signs its checkpoints with the key {fingerprint}, not {pinned} pinned when you "
                "logged in: another server may answer at that address, or the registry key was replaced, so its "
                f"history is not checked against it. Ask its operator, then run {accept} if the change is expected"
            )
        if pem is None or signing.fingerprint(pem.encode(), f"the registry key {self.url} sent") != pinned:
            raise IntegrityError(f"{self.url} sent a registry key whose fingerprint is not {pinned}, the one it names")
        return pem.encode()


def _signed_by(checkpoint: Checkpoint, public: bytes, registry_id: str) -> bool:
    from registry.domain import signing
    from registry.domain.audit import signed_checkpoint_fields
    from registry.domain.canonical import canonical_json

    fields = signed_checkpoint_fields(checkpoint.to_dict())
    return (
        fields is not None
        and checkpoint.registry == registry_id
        and checkpoint.key == signing.fingerprint(public)
        and signing.verify(public, canonical_json(fields), checkpoint.signature)
    )
