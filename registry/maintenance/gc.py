"""``adapters gc``: remove the blobs no version references, and abandoned uploads, once they are older
than a grace period.

Versions are immutable and never deleted, so an unreferenced blob comes only from a push that stored
its files and then crashed, was interrupted or was refused; an abandoned upload (a ``tmp/`` file, an
incomplete multipart upload) from a push killed while it was writing. gc works in two phases, so it
never races a push:

1. :meth:`GarbageCollector.plan`, outside any transaction: list the store, keep as candidates the
   blobs and uploads last written before ``now - grace``. A blob written after this listing is not a
   candidate, so it is never removed by this run.
2. :meth:`GarbageCollector.apply`, in ONE write transaction (the lock push's commit takes too): read
   which sha256s the versions and push events name, fresh; ask the store again about every remaining
   candidate (:meth:`BlobStore.info`, or one more listing when there are more than
   :data:`RELIST_OVER`) and keep the ones now written within the grace (a push stored
   them again: locally ``put`` refreshes an existing blob's mtime) or gone; remove the rest
   (:meth:`BlobStore.delete`) and the abandoned uploads; append the ``gc`` audit event.

A push stores its blobs before its write transaction and confirms each of them inside it, so a push
that found a blob already stored just before gc removed it finds it gone when it commits and stores
it again (:mod:`registry.catalog.push`): no version is ever recorded without its bytes.

Admins only; signed like every governing action when the policy requires signatures (the signed
action names every sha256 removed). A refused gc removes nothing and is recorded as a ``gc refused``
event. A dry run (``dry_run``) asks the same questions in a read transaction and removes, signs and
records nothing: it is not an action on the registry, so it leaves no trace in the audit log.
A run that finds nothing to remove records nothing either (like re-releasing a channel's target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.audit.log import AuditLog
from registry.domain import signing
from registry.domain.actor import Actor
from registry.domain.clock import Clock, parse_iso
from registry.domain.durations import format_duration
from registry.errors import PermissionDenied, PolicyNotMet
from registry.identity import Identity
from registry.maintenance.blobcheck import requests_made
from registry.maintenance.references import kept_by_records
from registry.maintenance.results import GcResult, RemovedBlob, RemovedUpload
from registry.policies import active_policy
from registry.storage.blobs.base import BlobInfo, BlobStore, PendingUpload
from registry.storage.records import Records, RecordStore

__all__ = ["ACTION", "DEFAULT_GRACE", "SUBJECT", "GarbageCollector", "GcPlan"]

ACTION = "gc"
#: The subject of gc's audit events.
SUBJECT = "blob store"
#: Seconds an unreferenced blob or an upload is left alone: longer than any push takes.
DEFAULT_GRACE = 24 * 3600
#: Above this many unreferenced candidates, gc re-lists the store rather than asking about each one.
RELIST_OVER = 64


@dataclass(frozen=True)
class GcPlan:
    """Phase 1's snapshot of the store: what was older than the grace when it was listed."""

    grace: int  # seconds
    at: str  # when the store was listed (the registry's clock)
    cutoff: float  # seconds since the epoch: candidates were last written at or before this
    listed: int  # blobs in the store
    blobs: tuple[BlobInfo, ...]  # candidates: blobs last written before the cutoff
    uploads: tuple[PendingUpload, ...]  # pending uploads last written (or begun) before the cutoff
    requests: int | None  # the store's request count before listing (for the result's count)


class GarbageCollector:
    def __init__(self, store: RecordStore, blobs: BlobStore, identity: Identity, audit: AuditLog, clock: Clock) -> None:
        self.store = store
        self.blobs = blobs
        self.identity = identity
        self.audit = audit
        self.clock = clock

    def run(self, actor: Actor, grace: int, signer: signing.Signer | None, dry_run: bool) -> GcResult:
        """Both phases. A refusal (the actor is not an admin, or did not sign where the policy requires
        it) is recorded as a ``gc refused`` event, unless this is a dry run, and raised."""
        try:
            return self.apply(actor, self.plan(actor, grace), signer, dry_run)
        except (PermissionDenied, PolicyNotMet) as exc:
            if not dry_run:
                self._record_refusal(actor, grace, exc)
            raise

    # -- phase 1: the listing ------------------------------------------------------------------

    def plan(self, actor: Actor, grace: int) -> GcPlan:
        """List the store: the candidates are what was last written before ``now - grace``."""
        with self.store.read() as records:
            self.identity.allowed(records, actor, ACTION)  # refused before the store is listed
        requests = requests_made(self.blobs)
        at = self.clock()
        cutoff = parse_iso(at).timestamp() - grace
        listed, old = 0, []
        for blob in self.blobs.iter_blobs():
            listed += 1
            if blob.modified <= cutoff:
                old.append(blob)
        uploads = tuple(u for u in self.blobs.pending_uploads() if u.started <= cutoff)
        return GcPlan(grace, at, cutoff, listed, tuple(old), uploads, requests)

    # -- phase 2: the removal, under the write lock -----------------------------------------------

    def apply(self, actor: Actor, plan: GcPlan, signer: signing.Signer | None, dry_run: bool = False) -> GcResult:
        """Remove what is still unreferenced and old (see the module documentation); ``dry_run``: say what."""
        if dry_run:
            with self.store.read() as records:
                self.identity.allowed(records, actor, ACTION)
                return self._collect(records, actor, plan, None, dry_run=True)
        with self.store.write() as records:
            self.identity.require(records, actor, ACTION)
            return self._collect(records, actor, plan, signer, dry_run=False)

    def _collect(
        self, records: Records, actor: Actor, plan: GcPlan, signer: signing.Signer | None, dry_run: bool
    ) -> GcResult:
        kept = kept_by_records(records)
        refreshed, doomed = 0, []
        unreferenced = [c for c in plan.blobs if c.sha256 not in kept]
        referenced = len(plan.blobs) - len(unreferenced)
        # Each candidate's current time, read after the references: one request per blob, or for many
        # candidates a second listing (a thousand blobs a request on S3), which answers the same question.
        current: dict[str, BlobInfo] | None = None
        if len(unreferenced) > RELIST_OVER:
            current = {b.sha256: b for b in self.blobs.iter_blobs()}
        for candidate in unreferenced:
            now = current.get(candidate.sha256) if current is not None else self.blobs.info(candidate.sha256)
            if now is None or now.modified > plan.cutoff:
                refreshed += 1  # stored again by a push since the listing, or already gone
                continue
            doomed.append(RemovedBlob(now.sha256, now.size, now.modified))
        uploads = self._abandoned(plan)
        event = None
        if not dry_run and (doomed or uploads):
            event = self._remove(records, actor, plan, signer, doomed, uploads)
        after = requests_made(self.blobs)
        return GcResult(
            dry_run=dry_run,
            grace=plan.grace,
            store=self.blobs.url,
            at=plan.at,
            listed=plan.listed,
            young=plan.listed - len(plan.blobs),
            referenced=referenced,
            refreshed=refreshed,
            blobs=tuple(doomed),
            uploads=tuple(RemovedUpload(u.id, u.key, u.size, u.started) for u in uploads),
            event=event,
            requests=after - plan.requests if after is not None and plan.requests is not None else None,
        )

    def _abandoned(self, plan: GcPlan) -> list[PendingUpload]:
        """The planned uploads still pending and not written to since the listing."""
        if not plan.uploads:
            return []
        planned = {(u.id, u.key) for u in plan.uploads}
        return [u for u in self.blobs.pending_uploads() if (u.id, u.key) in planned and u.started <= plan.cutoff]

    def _remove(
        self,
        records: Records,
        actor: Actor,
        plan: GcPlan,
        signer: signing.Signer | None,
        doomed: list[RemovedBlob],
        uploads: list[PendingUpload],
    ) -> int:
        """Sign (where the policy requires), remove, and record the ``gc`` event; its seq.

        Signed and checked before anything is removed, so a refusal removes nothing. Should the store
        fail half-way, the transaction rolls back and records nothing; what was removed was unreferenced."""
        sha256s = sorted(b.sha256 for b in doomed)
        at = self.clock()
        fields = {"action": ACTION, "subject": SUBJECT, "blobs": sha256s, "uploads": [u.key for u in uploads],
                  "grace": plan.grace, "actor": actor.name, "at": at}  # fmt: skip
        signed = self.identity.sign(records, actor, active_policy(records).policy, signer, fields)
        self.blobs.delete(sha256s)
        for upload in uploads:
            self.blobs.abort_upload(upload)
        payload: dict[str, Any] = {
            "store": self.blobs.url,
            "grace": format_duration(plan.grace),
            "blobs": len(doomed),
            "uploads": len(uploads),
            "bytes": sum(b.size for b in doomed) + sum(u.size for u in uploads),
            "deleted": sha256s,
            "aborted": [u.key for u in uploads],
        }
        return self.audit.append(records, actor, ACTION, SUBJECT, payload, signed=signed).seq

    def _record_refusal(self, actor: Actor, grace: int, exc: PermissionDenied | PolicyNotMet) -> None:
        """A ``gc refused`` event: who tried, and why (the rules not met, or the permission lacking: not an
        admin, removed, or signing with a key that is not theirs)."""
        payload: dict[str, Any] = {"grace": format_duration(grace)}
        if isinstance(exc, PolicyNotMet):
            payload["policy"], payload["policy_name"] = exc.policy.digest, exc.policy.name
            payload["rules"] = [{"rule": r.rule, "message": r.message} for r in exc.results if not r.passed]
        else:
            payload["rules"] = [{"rule": "permission", "message": exc.message}]
        with self.store.write() as records:
            self.audit.append(records, actor, f"{ACTION} refused", SUBJECT, payload)
