"""verify, merge and release --merge through ``adapters serve``: they run here, where the base model is.

The server has no base model, so the checks and the merge run on the client, with the embedded
registry's own code (:func:`registry.verification.service.run_checks`,
:meth:`registry.merge.service.Merger.merge_version`), reading the version through the server:

* ``verify --mode static`` reads the config and the safetensors headers by ranged requests (two
  small GETs per weights file, through the server or straight from S3 by a presigned URL): the
  weights are not downloaded;
* ``verify`` with a load check, and ``merge``, download every file into a scratch directory,
  re-hashing each as a pull does.

The report is then sent to the server, signed with the user's key when they have one, and the
server records it with the authenticated actor after checking every fact it can derive (see
:meth:`registry.verification.service.Verifier.record_submitted`). ``release --merge`` asks the
server whether the release's checks pass before it merges (a refused release costs no merge),
merges, and records the release with the merged files' sha256; if the server then refuses, the
merged directory is removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from registry._io import Progress, fsync_dir
from registry.domain.clock import now_iso
from registry.domain.verification import VerificationReport
from registry.domain.versions import Manifest
from registry.errors import IntegrityError, InvalidInput, PermissionDenied, StorageError
from registry.governance.results import ActionResult
from registry.remote._http import API
from registry.remote.calls.catalog import CatalogCalls
from registry.remote.calls.governance import GovernanceCalls
from registry.remote.calls.transfer import TransferCalls

if TYPE_CHECKING:
    from registry.merge.results import MergeResult
    from registry.storage.records import StoredProbeReference

__all__ = ["CheckCalls"]


def _v(ref: str) -> str:
    return f"{API}/versions/{quote(ref, safe='/:@')}"


class _Version:
    """One version as the server describes it, pinned (``NAME:N``), with where to download each file."""

    def __init__(self, manifest: Manifest, digest: str, state: str, plan: Mapping[str, Any]) -> None:
        self.manifest = manifest
        self.digest = digest
        self.state = state
        self.pinned = f"{manifest.name}:{manifest.version}"
        self.downloads = {str(f["sha256"]): dict(f["download"]) for f in plan["files"]}


class _ServedBlobs:
    """What :func:`registry.catalog.headers.read_stored_adapter` reads a version's headers from: ranged
    reads of its blobs, through the server (local store) or from S3 by the presigned URL it handed out."""

    def __init__(self, calls: CheckCalls, version: _Version) -> None:
        self._calls = calls
        self._version = version
        self._sizes = {f.sha256: f.size for f in version.manifest.files}
        self.url = calls.url

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` (fewer at the blob's end), as BlobStore.read_range."""
        how = self._version.downloads.get(sha256)
        if how is None:
            raise IntegrityError(f"{self._version.pinned} has no file with sha256 {sha256}")
        if length <= 0 or start >= self._sizes[sha256] + 1:
            return b""
        span = {"Range": f"bytes={start}-{start + length - 1}"}
        if how.get("via") == "server":
            params = {"ref": self._version.pinned, "allow_revoked": "true"}
            with self._calls._stream("GET", f"{API}/blobs/{sha256}", params=params, headers=span) as response:
                data = b"".join(response.iter_bytes())
        else:
            headers = {**dict(how.get("headers", {})), **span}
            data = self._calls._s3_request("GET", str(how["url"]), "read a header", headers=headers).content
        if len(data) > length:
            raise StorageError(
                f"asked {self._calls.url} for {length} bytes of blob {sha256} from byte {start}, got {len(data)}; "
                "verify again"
            )
        return data


class CheckCalls(CatalogCalls, TransferCalls, GovernanceCalls):
    """verify, merge and release --merge: run here, recorded by the server."""

    def _checked_version(self, ref: object, *, allow_revoked: bool) -> _Version:
        """The version ``ref`` names, pinned: its manifest (its digest checked here) and its downloads."""
        params = {"allow_revoked": "true"} if allow_revoked else {}
        info = self.show(ref)
        pinned = f"{info.name}:{info.version}"
        plan = self._request("GET", f"{API}/pulls/{quote(pinned, safe='/:@')}", params=params)
        if info.manifest.digest != info.digest or plan["digest"] != info.digest:
            raise IntegrityError(
                f"the server {self.url} describes {pinned} by a manifest that does not hash to its digest "
                f"{info.digest[:19]}…; nothing was checked. Run `adapters fsck` on the server host"
            )
        return _Version(info.manifest, info.digest, info.state, plan)

    def _export(self, version: _Version, directory: Path, allow_revoked: bool, progress: Progress | None) -> None:
        for entry in version.manifest.files:
            how = version.downloads[entry.sha256]
            self._download(entry, how, directory, version.pinned, allow_revoked, directory, progress)
        for d in {(directory / e.path).parent for e in version.manifest.files}:
            fsync_dir(d)

    def _probe_reference(self, pinned: str, fingerprint: str, settings: str) -> StoredProbeReference | None:
        from registry.storage.records import StoredProbeReference

        params = {"ref": pinned, "fingerprint": fingerprint, "settings": settings}
        found = self._request("GET", f"{API}/probe-references", params=params)["reference"]
        if found is None:
            return None
        return StoredProbeReference(
            int(found["id"]), str(found["sample_json"]), str(found["digest"]), str(found["created_at"]),
            str(found["created_by"]),
        )  # fmt: skip

    def verify(
        self,
        ref: object,
        base: str | None = None,
        *,
        mode: str = "all",
        device: str = "auto",
        quant: str = "nf4",
        double_quant: bool = True,
        compute_dtype: str | None = None,
        allow_base_mismatch: bool = False,
        key: object = None,
        targets: Sequence[str] = (),
        max_lora_rank: int | None = None,
        lora_target_modules: Sequence[str] | None = None,
    ) -> VerificationReport:
        """As :meth:`registry.Registry.verify`: the checks run here, the server records the report (and derives
        its serving-target checks again from the stored config and headers)."""
        from registry.catalog.headers import read_stored_adapter
        from registry.domain.serving import serving_targets
        from registry.filehashes import FileHashCache
        from registry.settings import Settings
        from registry.verification.service import VerifyOptions, VersionSource, run_checks

        served = serving_targets(targets, max_lora_rank, lora_target_modules)
        options = VerifyOptions(mode, device, quant, double_quant, compute_dtype, allow_base_mismatch, targets=served)
        user = self.whoami().user
        version = self._checked_version(ref, allow_revoked=True)
        source = VersionSource(
            headers=lambda: read_stored_adapter(_ServedBlobs(self, version), version.manifest),  # type: ignore[arg-type]
            export=lambda directory: self._export(version, directory, True, None),
            reference=lambda fingerprint, settings: self._probe_reference(version.pinned, fingerprint, settings),
        )
        hashes = FileHashCache((self._settings or Settings.from_env()).cache_dir)
        try:
            outcome = run_checks(version.manifest, version.digest, base, options, source, hashes, user, now_iso)
        finally:
            hashes.close()
        body = {
            "report": outcome.report.to_dict(),
            "reference": outcome.sample.to_dict() if outcome.sample is not None else None,
        }
        path = f"{_v(version.pinned)}/verifications"
        return VerificationReport.from_dict(self._signed("POST", path, key, "verify", version.manifest.name, json=body))

    def merge(
        self,
        ref: object,
        *,
        out: str | Path,
        base: str | None = None,
        dtype: str | None = None,
        base_precision: str = "original",
        allow_base_mismatch: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> MergeResult:
        """As :meth:`registry.Registry.merge`: the adapter's files are downloaded (re-hashed) and merged here."""
        from registry.merge.results import MergeOptions

        options = MergeOptions(dtype, base_precision, allow_base_mismatch, force)
        # a revoked version is refused by _merge, with the embedded merge's message
        return self._merge(self._checked_version(ref, allow_revoked=True), base, Path(out), options, progress)

    def _merge(
        self, version: _Version, base: str | None, out: Path, options: Any, progress: Progress | None
    ) -> MergeResult:
        from registry.filehashes import FileHashCache
        from registry.merge.service import Merger
        from registry.settings import Settings

        if version.state == "revoked":
            raise PermissionDenied(
                f"{version.pinned} ({version.digest[:19]}…) is revoked; a revoked version is not merged",
                self.whoami().user,
            )
        hashes = FileHashCache((self._settings or Settings.from_env()).cache_dir)
        try:
            merger = Merger(None, hashes)

            def export(directory: Path) -> None:
                self._export(version, directory, True, None)

            return merger.merge_version(version.manifest, version.digest, export, base, out, options, progress)
        finally:
            hashes.close()

    def release(
        self,
        ref: object,
        *,
        channel: str,
        key: object = None,
        reason: str | None = None,
        merge: bool = False,
        base: str | None = None,
        out: str | Path | None = None,
        dtype: str | None = None,
        base_precision: str = "original",
        allow_base_mismatch: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> ActionResult:
        """As :meth:`registry.Registry.release`; with ``merge`` the merge runs here, between the server's
        read-only checks and the release it records with the merged files' sha256."""
        if not merge:
            return super().release(ref, channel=channel, key=key, reason=reason)
        """release --merge: the server's checks first, the merge here, then the release with the merge recorded."""
        from registry.merge.results import MergeOptions

        if out is None:
            raise InvalidInput("a release with --merge needs --out DIR for the merged checkpoint")
        options = MergeOptions(dtype, base_precision, allow_base_mismatch, force)
        version = self._checked_version(ref, allow_revoked=True)
        check = {"channel": channel, "signed": self._key_signer(key) is not None}
        if not self._request("POST", f"{_v(version.pinned)}/release-check", json=check)["would_release"]:
            return super().release(version.pinned, channel=channel, key=key, reason=reason)  # already there
        target = Path(out).expanduser().absolute()
        result = self._merge(version, base, target, options, progress)
        merged = {**result.release_details(), "warnings": list(result.warnings)}
        try:
            body = {"channel": channel, "reason": reason, "merged": merged}
            done = self._signed(
                "POST", f"{_v(version.pinned)}/release", key, "release", version.manifest.name, json=body
            )
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)  # the release was refused: no checkpoint it does not record
            raise
        return ActionResult.from_dict(done)
