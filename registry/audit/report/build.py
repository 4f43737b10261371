"""Audit reports: every fact an auditor or model-risk reviewer asks for, from the registry alone.

:func:`build` gathers the facts into one plain structure (the JSON report, ``schema_version``
1, documented in the README); the HTML and Markdown renderers present exactly that
structure. Records are loaded with one query per kind (not one per version), so a registry
of thousands of versions reports in a second or two.

Problems are never hidden: a broken audit chain, a checkpoint that does not match, a
signature that does not verify, a revoked version in a channel's history and a released or
approved version that fails the policy in force are listed under ``alerts``, which every
format shows first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from registry.audit.report.people import independence_alerts, people_section
from registry.audit.report.sections import (
    channel_sections,
    inventory,
    lineage,
    metrics,
    policy_section,
    version_section,
)
from registry.audit.results import AuditVerification
from registry.catalog.resolve import adapter_id, resolve
from registry.domain.adapterdir import AdapterContents
from registry.domain.annotations import current_tags
from registry.domain.audit import Event
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.clock import Clock
from registry.domain.records import ChannelMove
from registry.domain.refs import Ref
from registry.domain.roles import Access
from registry.domain.rules import evaluate
from registry.domain.state import channel_targets, version_state
from registry.domain.versions import Manifest
from registry.errors import InvalidInput
from registry.governance.context import build_context, grantors_of
from registry.identity import Identity
from registry.policies import ActivePolicy, Policies
from registry.storage.records import Records, StoredVersion

__all__ = ["SCHEMA_VERSION", "ReportScope", "build", "gather", "parse_when", "seal", "with_integrity"]

SCHEMA_VERSION = 1


def parse_when(text: str | None, end_of_day: bool = False) -> str | None:
    """``2026-11-22`` or an ISO-8601 time, as the registry's timestamp text (for comparisons)."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            moment = day.replace(hour=23, minute=59, second=59, microsecond=999999) if end_of_day else day
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a date; use YYYY-MM-DD or an ISO-8601 time like 2026-11-22T10:00:00Z"
        ) from None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: the registry, one adapter (``name``) or one version (``ref``)."""

    subject: str | None = None
    since: str | None = None
    until: str | None = None

    def within(self, at: str) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at <= self.until)


class _Facts:
    """Every record of the versions in scope, loaded with one query per kind (not one per version)."""

    def __init__(self, records: Records, versions: Sequence[StoredVersion], adapter_ids: Sequence[int] | None) -> None:
        ids = [v.id for v in versions]
        keyring = Identity.keyring(records)
        self.keyring = keyring
        self.evals = records.evals(ids)
        self.verifications = records.verifications(ids)
        self.approvals = records.approvals(ids)
        self.transitions = records.transitions(ids)
        self.moves = keyring.moves(records.moves(adapter_ids))
        self.state = {vid: version_state(ts) for vid, ts in self.transitions.items()}
        self.adapter: Callable[[Manifest], AdapterContents | None] | None = None
        keys = records.keys()
        self.latest_key = {k.user: k.fingerprint for k in keys}  # oldest first: the last one wins
        self.grantors = grantors_of(records)
        self.tags = records.tag_changes(ids)
        self.notes = records.notes(ids)
        refs = {v.ref for v in versions}
        self.refused: dict[str, list[Event]] = defaultdict(list)
        for e in records.refusals():
            if e.subject in refs:
                self.refused[e.subject].append(e)

    def adapter_moves(self, name: str) -> list[ChannelMove]:
        return [m for m in self.moves if m.name == name]


def build(
    records: Records,
    policies: Policies,
    verification: AuditVerification,
    scope: ReportScope,
    registry: Mapping[str, str],
    actor: str,
    clock: Clock,
    access: Access | None = None,
    adapter: Callable[[Manifest], AdapterContents | None] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready structure (see the README for its schema), of what ``access`` sees: for a
    user whose roles are all for some namespaces, the adapters of those only, and no finding of the chain's
    verification that names another adapter (it is said that there was one, not what it said)."""
    access = access or Access.unrestricted()
    report = gather(records, policies, scope, registry, actor, clock, access, adapter)
    if access.restricted:
        verification = _narrowed(verification, [n for n in records.adapter_names() if not access.sees(n)])
    return with_integrity(report, verification)


def with_integrity(report: Mapping[str, Any], verification: AuditVerification) -> dict[str, Any]:
    """``report`` (from :func:`gather`) with its integrity section and the alerts of that verification, first.

    Kept apart from :func:`gather` so that the verification can be made by whoever holds the trust
    material: the embedded registry on its own database, or a client over a server's export."""
    alerts: list[dict[str, Any]] = []
    integrity = _integrity(verification, alerts)
    return {**report, "alerts": alerts + list(report["alerts"]), "integrity": integrity}


def gather(
    records: Records,
    policies: Policies,
    scope: ReportScope,
    registry: Mapping[str, str],
    actor: str,
    clock: Clock,
    access: Access | None = None,
    adapter: Callable[[Manifest], AdapterContents | None] | None = None,
) -> dict[str, Any]:
    """Every fact of the report that ``access`` sees but its integrity section (``integrity`` None; see
    :func:`with_integrity`). ``adapter`` reads a version's config and headers (the policy's ``serving`` rule)."""
    access = access or Access.unrestricted()
    kind, names, only_version = _subject(records, scope.subject, access)
    versions = [v for v in records.versions_of(names) if access.sees(v.name)]
    if only_version is not None:
        versions = [v for v in versions if v.id == only_version]
    if kind != "version":
        versions = [v for v in versions if scope.within(v.created_at)]
    adapter_ids = sorted({v.adapter_id for v in versions}) if names is not None else None
    facts = _Facts(records, versions, adapter_ids)
    facts.adapter = adapter
    facts.moves = [m for m in facts.moves if access.sees(m.name)]
    active = policies.active(records)
    alerts: list[dict[str, Any]] = []
    by_adapter: dict[str, list[dict[str, Any]]] = defaultdict(list)
    manifests: dict[int, Manifest] = {}
    channel_policy: dict[str, ActivePolicy] = {}
    for v in versions:
        manifest = manifests[v.id] = v.manifest()
        by_adapter[v.name].append(_version(records, v, manifest, facts, active, channel_policy, scope, alerts))
    _signature_alerts(facts, versions, alerts)
    revoked = {(v.name, v.number) for v in versions if facts.state.get(v.id) == "revoked"}
    adapters = [
        {
            "name": name,
            "channels": channel_sections(facts.adapter_moves(name), revoked, alerts, scope.within),
            "lineage": lineage([manifests[v.id] for v in versions if v.name == name]),
            "metrics": metrics(sections),
            "versions": sections,
        }
        for name, sections in by_adapter.items()
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "subject": scope.subject,
        "title": _title(kind, scope.subject),
        "generated_at": clock(),
        "generated_by": actor,
        "registry": dict(registry),
        "window": {"since": scope.since, "until": scope.until},
        "policy": active.to_dict(),
        "alerts": alerts,
        "integrity": None,
        "inventory": inventory(adapters) if kind == "registry" else [],
        "adapters": adapters,
        "people": people_section(records),
    }


def _subject(records: Records, subject: str | None, access: Access) -> tuple[str, list[str] | None, int | None]:
    if subject is None:
        return "registry", None, None
    ref = Ref.parse(subject)
    if ref.version is None and ref.channel is None and ref.digest is None:
        adapter_id(records, ref.name, access)  # NotFound when it does not exist (or is not seen)
        return "adapter", [ref.name], None
    return "version", [ref.name], resolve(records, ref, access).id


def _narrowed(result: AuditVerification, hidden: Sequence[str]) -> AuditVerification:
    """The verification with each finding that names an adapter in ``hidden`` said without its words."""
    if not hidden:
        return result
    pattern = re.compile("|".join(rf"(?<![a-z0-9._/-]){re.escape(n)}(?![a-z0-9_/-]|\.[a-z0-9])" for n in hidden))
    findings = [
        f if not pattern.search(f.message)
        else replace(f, message=f"a problem of kind {f.kind} about an adapter outside the namespaces you hold a role in")
        for f in result.findings
    ]  # fmt: skip
    return replace(result, findings=tuple(findings))


def _version(
    records: Records,
    v: StoredVersion,
    manifest: Manifest,
    facts: _Facts,
    active: ActivePolicy,
    channel_policy: dict[str, ActivePolicy],
    scope: ReportScope,
    alerts: list[dict[str, Any]],
) -> dict[str, Any]:
    """One version's section, its policy checks (as ``adapters policy check`` makes them) and alerts."""
    moves = facts.adapter_moves(v.name)
    state = facts.state.get(v.id, "draft")

    def check(channel: str | None, policy: ActivePolicy) -> dict[str, Any]:
        ctx = build_context(
            v, manifest,
            evals=facts.evals.get(v.id, []), verifications=facts.verifications.get(v.id, []),
            approvals=facts.approvals.get(v.id, []), adapter_moves=moves,
            author_key=facts.latest_key.get(manifest.created_by), keyring=facts.keyring, channel=channel,
            grantors=facts.grantors, adapter=facts.adapter,
        )  # fmt: skip
        return policy_section(policy.policy, evaluate(policy.policy, ctx))

    registry_check = check(None, active)
    if state in ("approved", "released"):
        _policy_alerts(v.ref, state, registry_check, alerts)
    current = {c for c, m in channel_targets(moves).items() if m.version == v.number}
    channel_checks = []
    for channel in sorted({m.channel for m in moves if m.version == v.number and m.action == "release"}):
        policy = channel_policy.get(channel) or channel_policy.setdefault(channel, Policies.active(records, channel))
        result = {"channel": channel, **check(channel, policy)}
        channel_checks.append(result)
        if channel in current and state == "released":
            _policy_alerts(v.ref, f"on {channel}", result, alerts)
    approvals = facts.approvals.get(v.id, [])
    alerts += independence_alerts(v.ref, manifest.created_by, approvals, facts.grantors)
    section = version_section(
        manifest, v.digest, state,
        evals=facts.evals.get(v.id, []), verifications=facts.verifications.get(v.id, []),
        approvals=facts.keyring.approvals(facts.approvals.get(v.id, []), v.ref, v.digest),
        transitions=facts.transitions.get(v.id, []),
        moves=[m for m in moves if m.version == v.number],
        thresholds={(e.metric, e.dataset): e for e in active.policy.evals},
        policy=registry_check, channel_policies=channel_checks, within_scope=scope.within,
    )  # fmt: skip
    changes = facts.tags.get(v.id, [])
    section["tags"] = current_tags(changes)
    section["tag_history"] = [t.to_dict() for t in changes if scope.within(t.at)]
    section["notes"] = [n.to_dict() for n in facts.notes.get(v.id, []) if scope.within(n.at)]
    section["refused"] = [
        {"at": e.at, "actor": e.actor, "action": e.action.removesuffix(" refused"), "policy": e.data.get("policy_name"),
         "channel": e.data.get("channel"), "rules": e.data.get("rules", [])}
        for e in facts.refused.get(v.ref, []) if scope.within(e.at)
    ]  # fmt: skip
    return section


def _policy_alerts(ref: str, where: str, check: Mapping[str, Any], alerts: list[dict[str, Any]]) -> None:
    for r in check["results"]:
        if not r["passed"]:
            alerts.append(
                {
                    "severity": "warning",
                    "kind": "policy",
                    "subject": ref,
                    "message": f"{ref} is {where} but fails rule {r['rule']} of policy {check['name']!r}: {r['message']}",
                }
            )


def _signature_alerts(facts: _Facts, versions: Sequence[StoredVersion], alerts: list[dict[str, Any]]) -> None:
    for v in versions:
        for a in facts.keyring.approvals(facts.approvals.get(v.id, []), v.ref, v.digest):
            if a.signature_valid is False:
                alerts.append(
                    {
                        "severity": "critical",
                        "kind": "signature",
                        "subject": v.ref,
                        "message": f"the {a.decision} of {v.ref} by {a.actor} at {a.at} carries a signature that "
                        f"is not valid: {a.signature_note}",
                    }
                )
    for m in facts.moves:
        if m.signature_valid is False:
            alerts.append(
                {
                    "severity": "critical",
                    "kind": "signature",
                    "subject": f"{m.name}:{m.version}",
                    "message": f"the {m.action} of {m.name}:{m.version} to {m.channel} by {m.actor} at {m.at} carries "
                    f"a signature that is not valid: {m.signature_note}",
                }
            )


def _title(kind: str, subject: str | None) -> str:
    if kind == "registry":
        return "Audit report: adapter registry"
    return f"Audit report: {'adapter' if kind == 'adapter' else 'version'} {subject}"


#: Alert kinds of verification findings that are not about the chain itself.
_ALERT_KINDS = {"truncated": "checkpoint", "rewritten": "checkpoint", "bad-signature": "checkpoint", "trust": "trust"}


def _integrity(result: AuditVerification, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    for finding in result.findings:
        kind = _ALERT_KINDS.get(finding.kind) or next(
            (k for prefix, k in (("checkpoint", "checkpoint"), ("blob", "blob")) if finding.kind.startswith(prefix)),
            "audit-chain",
        )
        alerts.append(
            {
                "severity": "critical",
                "kind": kind,
                "subject": f"event {finding.seq}" if finding.seq is not None else kind,
                "message": finding.message,
            }
        )
    return {
        "ok": result.ok,
        "events": result.events,
        "head": result.head,
        "findings": [f.to_dict() for f in result.findings],
        "checkpoint": result.checkpoints[-1] if result.checkpoints else None,
        "checkpoints": list(result.checkpoints),
        "registry_key": result.registry_key,
        "registry_id": result.registry_id,
        "facts": result.facts,
        "signatures": result.signatures,
        "unsigned_events": result.unsigned_events,
        "trust": result.trust,
        "blobs": result.blobs,
    }


def seal(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON report with ``report_sha256``: the sha256 of its canonical JSON without that field."""
    body = {k: v for k, v in report.items() if k != "report_sha256"}
    return {**body, "report_sha256": sha256_digest(canonical_json(body))}
