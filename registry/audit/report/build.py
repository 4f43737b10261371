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

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from registry.audit.log import AuditLog
from registry.catalog.service import Catalog
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.clock import now_iso
from registry.domain.policy import PolicyContext, evaluate
from registry.domain.records import ApprovalRecord
from registry.domain.refs import Ref
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, Manifest
from registry.errors import InvalidInput
from registry.policies import Policies
from registry.storage import records
from registry.storage.tables import (
    AdapterRow,
    ApprovalRow,
    ChannelMoveRow,
    EvalRow,
    TransitionRow,
    UserKeyRow,
    VerificationRow,
    VersionRow,
)

__all__ = ["SCHEMA_VERSION", "ReportScope", "build", "parse_when", "seal"]

SCHEMA_VERSION = 1

_T = {
    "adapters": AdapterRow.__table__,  # type: ignore[attr-defined]
    "versions": VersionRow.__table__,  # type: ignore[attr-defined]
    "evals": EvalRow.__table__,  # type: ignore[attr-defined]
    "verifications": VerificationRow.__table__,  # type: ignore[attr-defined]
    "approvals": ApprovalRow.__table__,  # type: ignore[attr-defined]
    "transitions": TransitionRow.__table__,  # type: ignore[attr-defined]
    "moves": ChannelMoveRow.__table__,  # type: ignore[attr-defined]
    "keys": UserKeyRow.__table__,  # type: ignore[attr-defined]
}


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


def _verified(
    keys: Mapping[tuple[str, str], bytes],
    actor: str,
    fingerprint: str | None,
    payload: str | None,
    signature: str | None,
) -> bool | None:
    return records.signature_valid(keys.get((actor, fingerprint or "")), payload, signature)


class _Facts:
    """Every record of the versions in scope, loaded with one query per kind."""

    def __init__(self, session: Session, version_ids: Sequence[int]) -> None:
        t = _T
        ids = list(version_ids)
        self.keys = {
            (r.user_name, r.fingerprint): r.public_key.encode("ascii") for r in session.execute(select(t["keys"])).all()
        }
        self.evals: dict[int, list[EvalRecord]] = defaultdict(list)
        for r in session.execute(
            select(t["evals"]).where(t["evals"].c.version_id.in_(ids)).order_by(t["evals"].c.id)
        ).all():
            self.evals[r.version_id].append(records.eval_record(r))
        self.verifications: dict[int, list[VerificationReport]] = defaultdict(list)
        for r in session.execute(
            select(t["verifications"]).where(t["verifications"].c.version_id.in_(ids)).order_by(t["verifications"].c.id)
        ).all():
            self.verifications[r.version_id].append(VerificationReport.from_dict(json.loads(r.report), id=r.id))
        self.approvals: dict[int, list[ApprovalRecord]] = defaultdict(list)
        for r in session.execute(
            select(t["approvals"]).where(t["approvals"].c.version_id.in_(ids)).order_by(t["approvals"].c.id)
        ).all():
            self.approvals[r.version_id].append(
                records.approval_record(
                    r, _verified(self.keys, r.actor, r.key_fingerprint, r.signed_payload, r.signature)
                )
            )
        self.transitions: dict[int, list[Any]] = defaultdict(list)
        for r in session.execute(
            select(t["transitions"]).where(t["transitions"].c.version_id.in_(ids)).order_by(t["transitions"].c.id)
        ).all():
            self.transitions[r.version_id].append(r)
        self.state = {vid: rows[-1].to_state for vid, rows in self.transitions.items()}


def build(
    session: Session,
    catalog: Catalog,
    policies: Policies,
    audit: AuditLog,
    scope: ReportScope,
    checkpoints: Iterable[Path],
    registry: Mapping[str, str],
    actor: str,
) -> dict[str, Any]:
    """The report as a JSON-ready structure (see the README for its schema)."""
    t = _T
    kind, names, only_version = _subject(session, catalog, scope.subject)
    query = select(t["versions"], t["adapters"].c.name.label("adapter_name")).join(
        t["adapters"], t["adapters"].c.id == t["versions"].c.adapter_id
    )
    if names is not None:
        query = query.where(t["adapters"].c.name.in_(names))
    rows = [r for r in session.execute(query.order_by(t["adapters"].c.name, t["versions"].c.number)).all()]
    if only_version is not None:
        rows = [r for r in rows if r.id == only_version]
    if kind != "version":
        rows = [r for r in rows if scope.within(r.created_at)]
    facts = _Facts(session, [r.id for r in rows])
    adapter_ids = {r.adapter_id for r in rows} if names is not None else None
    moves = _moves(session, facts, adapter_ids)
    active = policies.active(session)
    alerts: list[dict[str, Any]] = []
    integrity = _integrity(audit, checkpoints, alerts)
    by_adapter: dict[str, list[dict[str, Any]]] = defaultdict(list)
    manifests: dict[int, Manifest] = {}
    for r in rows:
        manifest = catalog.manifest_of(r)
        manifests[r.id] = manifest
        by_adapter[r.adapter_name].append(_version(r, manifest, facts, moves, active, scope, alerts))
    _signature_alerts(moves, alerts)
    adapters = []
    for name, versions in by_adapter.items():
        adapter_moves = [m for m in moves.values() if m["name"] == name]
        adapters.append(
            {
                "name": name,
                "channels": _channels(adapter_moves, facts, rows, alerts, scope),
                "lineage": _lineage([manifests[r.id] for r in rows if r.adapter_name == name]),
                "metrics": _metrics(versions),
                "versions": versions,
            }
        )
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "subject": scope.subject,
        "title": _title(kind, scope.subject),
        "generated_at": now_iso(),
        "generated_by": actor,
        "registry": dict(registry),
        "window": {"since": scope.since, "until": scope.until},
        "policy": active.to_dict(),
        "alerts": alerts,
        "integrity": integrity,
        "inventory": _inventory(adapters) if kind == "registry" else [],
        "adapters": adapters,
    }
    return report


def _subject(session: Session, catalog: Catalog, subject: str | None) -> tuple[str, list[str] | None, int | None]:
    if subject is None:
        return "registry", None, None
    ref = Ref.parse(subject)
    if ref.version is None and ref.channel is None and ref.digest is None:
        catalog.adapter_id(session, ref.name)  # NotFound when it does not exist
        return "adapter", [ref.name], None
    row = catalog.resolve_row(session, ref)
    return "version", [ref.name], int(row.id)


def _title(kind: str, subject: str | None) -> str:
    if kind == "registry":
        return "Audit report: adapter registry"
    return f"Audit report: {'adapter' if kind == 'adapter' else 'version'} {subject}"


def _integrity(audit: AuditLog, checkpoints: Iterable[Path], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    files = list(checkpoints) or _latest_checkpoint(audit)
    result = audit.verify(files)
    for finding in result.findings:
        alerts.append(
            {
                "severity": "critical",
                "kind": "checkpoint" if finding.kind in ("truncated", "rewritten", "bad-signature") else "audit-chain",
                "subject": f"event {finding.seq}" if finding.seq is not None else "checkpoint",
                "message": finding.message,
            }
        )
    return {
        "ok": result.ok,
        "events": result.events,
        "head": result.head,
        "findings": [f.to_dict() for f in result.findings],
        "checkpoint": result.checkpoints[-1] if result.checkpoints else None,
        "registry_key": result.registry_key,
    }


def _latest_checkpoint(audit: AuditLog) -> list[Path]:
    directory = audit.checkpoint_dir
    files = sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []
    return files[-1:]


def _moves(session: Session, facts: _Facts, adapter_ids: set[int] | None) -> dict[int, dict[str, Any]]:
    t = _T
    v, p = t["versions"].alias("v"), t["versions"].alias("p")
    query = (
        select(t["moves"], t["adapters"].c.name, v.c.number, v.c.digest, p.c.number.label("previous_number"))
        .join(t["adapters"], t["adapters"].c.id == t["moves"].c.adapter_id)
        .join(v, v.c.id == t["moves"].c.version_id)
        .outerjoin(p, p.c.id == t["moves"].c.previous_version_id)
        .order_by(t["moves"].c.id)
    )
    if adapter_ids is not None:
        query = query.where(t["moves"].c.adapter_id.in_(adapter_ids))
    out = {}
    for r in session.execute(query).all():
        details = json.loads(r.details) if r.details else None
        out[r.id] = {
            "id": r.id, "name": r.name, "channel": r.channel, "action": r.action, "version": r.number,
            "version_id": r.version_id, "ref": f"{r.name}:{r.number}", "digest": r.digest, "previous": r.previous_number,
            "actor": r.actor, "at": r.at, "reason": r.reason, "policy_digest": r.policy_digest,
            "key_fingerprint": r.key_fingerprint,
            "signature_valid": _verified(facts.keys, r.actor, r.key_fingerprint, r.signed_payload, r.signature),
            "merged": (details or {}).get("merged"),
        }  # fmt: skip
    return out


def _version(
    row: Any,
    manifest: Manifest,
    facts: _Facts,
    moves: Mapping[int, dict[str, Any]],
    active: Any,
    scope: ReportScope,
    alerts: list[dict[str, Any]],
) -> dict[str, Any]:
    vid = row.id
    ref = f"{manifest.name}:{manifest.version}"
    state = facts.state.get(vid, "draft")
    released_to = {m["channel"] for m in moves.values() if m["version_id"] == vid and m["action"] == "release"}
    policy = active.policy
    ctx = PolicyContext(
        ref=ref,
        manifest=manifest,
        evals=tuple(facts.evals[vid]),
        verifications=tuple(facts.verifications[vid]),
        approvals=tuple(facts.approvals[vid]),
        released_to=tuple(sorted(released_to)),
    )
    results = evaluate(policy, ctx, skip=("channels",))
    if state in ("approved", "released"):
        for r in results:
            if not r.passed:
                alerts.append(
                    {
                        "severity": "warning",
                        "kind": "policy",
                        "subject": ref,
                        "message": f"{ref} is {state} but fails rule {r.rule} of policy {policy.name!r}: {r.message}",
                    }
                )
    thresholds = {(e.metric, e.dataset): e for e in policy.evals}
    for a in facts.approvals[vid]:
        if a.signature_valid is False:
            alerts.append(
                {
                    "severity": "critical",
                    "kind": "signature",
                    "subject": ref,
                    "message": f"the {a.decision} of {ref} by {a.actor} at {a.at} carries a signature that does not verify against {a.actor}'s registered key",
                }
            )
    facts_peft = manifest.peft
    lifecycle = [
        {
            "at": t.at,
            "actor": t.actor,
            "kind": "transition",
            "action": t.action,
            "from": t.from_state,
            "to": t.to_state,
            "reason": t.reason,
            "policy_digest": t.policy_digest,
        }
        for t in facts.transitions[vid]
        if scope.within(t.at)
    ] + [
        {
            "at": m["at"],
            "actor": m["actor"],
            "kind": "channel",
            "action": m["action"],
            "channel": m["channel"],
            "previous": m["previous"],
            "reason": m["reason"],
            "policy_digest": m["policy_digest"],
            "signature_valid": m["signature_valid"],
            "merged": m["merged"],
        }
        for m in moves.values()
        if m["version_id"] == vid and scope.within(m["at"])
    ]
    return {
        "name": manifest.name,
        "version": manifest.version,
        "ref": ref,
        "digest": row.digest,
        "state": state,
        "created_at": manifest.created_at,
        "created_by": manifest.created_by,
        "description": manifest.description,
        "files": [f.to_dict() for f in manifest.files],
        "size": manifest.size,
        "adapter": {
            "peft_type": facts_peft.type,
            "task_type": facts_peft.task_type,
            "r": facts_peft.r,
            "lora_alpha": facts_peft.lora_alpha,
            "use_rslora": facts_peft.use_rslora,
            "use_dora": facts_peft.use_dora,
            "target_modules": facts_peft.target_modules,
            "modules_to_save": facts_peft.modules_to_save,
            "rank_pattern": facts_peft.rank_pattern,
            "alpha_pattern": facts_peft.alpha_pattern,
            "trainable_parameters": facts_peft.parameters,
            "tensors": facts_peft.tensors,
            "dtypes": facts_peft.dtypes,
            "peft_version": facts_peft.peft_version,
        },
        "base": manifest.base.to_dict(),
        "quantization": manifest.quantization.to_dict(),
        "lineage": {
            "datasets": [d.to_dict() for d in manifest.datasets],
            "training": dict(manifest.training) if manifest.training else None,
            "parent": manifest.parent.to_dict() if manifest.parent else None,
        },
        "evaluation": [
            {
                **e.to_dict(),
                "threshold": _threshold(thresholds.get((e.metric, e.dataset))),
                "passed": _within(thresholds.get((e.metric, e.dataset)), e.value),
            }
            for e in facts.evals[vid]
            if scope.within(e.recorded_at)
        ],
        "verification": [r.to_dict() for r in facts.verifications[vid] if scope.within(r.created_at)],
        "approvals": [
            {k: v for k, v in a.to_dict().items() if k not in ("signature", "signed_payload")}
            for a in facts.approvals[vid]
            if scope.within(a.at)
        ],
        "lifecycle": sorted(lifecycle, key=lambda x: x["at"]),
        "policy": {
            "name": policy.name,
            "digest": policy.digest,
            "passed": all(r.passed for r in results),
            "results": [r.to_dict() for r in results],
        },
    }


def _threshold(t: Any) -> dict[str, Any] | None:
    return {"min": t.min, "max": t.max} if t is not None else None


def _within(t: Any, value: float) -> bool | None:
    if t is None:
        return None
    return (t.min is None or value >= t.min) and (t.max is None or value <= t.max)


def _signature_alerts(moves: Mapping[int, dict[str, Any]], alerts: list[dict[str, Any]]) -> None:
    for m in moves.values():
        if m["signature_valid"] is False:
            alerts.append(
                {
                    "severity": "critical",
                    "kind": "signature",
                    "subject": m["ref"],
                    "message": f"the {m['action']} of {m['ref']} to {m['channel']} by {m['actor']} at {m['at']} carries a signature that does not verify",
                }
            )


def _channels(
    moves: list[dict[str, Any]], facts: _Facts, rows: Sequence[Any], alerts: list[dict[str, Any]], scope: ReportScope
) -> list[dict[str, Any]]:
    revoked = {(r.adapter_name, r.number) for r in rows if facts.state.get(r.id) == "revoked"}
    out = []
    for channel in sorted({m["channel"] for m in moves}):
        history = [m for m in moves if m["channel"] == channel]
        for m in history:
            if (m["name"], m["version"]) in revoked:
                alerts.append(
                    {
                        "severity": "critical",
                        "kind": "revoked-in-channel",
                        "subject": f"{m['name']}@{channel}",
                        "message": f"{m['ref']}, now revoked, was served on {channel} ({m['action']} at {m['at']} by {m['actor']})",
                    }
                )
        out.append(
            {
                "channel": channel,
                "current": history[-1]["version"],
                "ref": history[-1]["ref"],
                "history": [
                    {k: v for k, v in m.items() if k != "version_id"} for m in history if scope.within(m["at"])
                ],
            }
        )
    return out


def _lineage(manifests: Sequence[Manifest]) -> dict[str, Any]:
    """Nodes and edges: base -> version -> dataset, and parent -> child versions."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    for m in manifests:
        base_id = "base:" + (m.base.fingerprint or m.base.name or "unknown")
        nodes.setdefault(
            base_id,
            {
                "id": base_id,
                "kind": "base",
                "label": m.base.name or "unknown base",
                "detail": (m.base.fingerprint or "no fingerprint")[:19],
            },
        )
        version_id = f"version:{m.name}:{m.version}"
        nodes[version_id] = {
            "id": version_id,
            "kind": "version",
            "label": f"{m.name}:{m.version}",
            "detail": m.created_at[:10],
        }
        edges.append({"from": base_id, "to": version_id, "kind": "base"})
        for d in m.datasets:
            data_id = f"dataset:{d.name}:{d.sha256 or d.uri or ''}"
            nodes.setdefault(
                data_id, {"id": data_id, "kind": "dataset", "label": d.name, "detail": (d.license or "no licence")}
            )
            edges.append({"from": version_id, "to": data_id, "kind": "trained-on"})
        if m.parent:
            parent_id = f"version:{m.parent.name}:{m.parent.version}"
            nodes.setdefault(
                parent_id,
                {
                    "id": parent_id,
                    "kind": "version",
                    "label": f"{m.parent.name}:{m.parent.version}",
                    "detail": "parent",
                },
            )
            edges.append({"from": parent_id, "to": version_id, "kind": "parent"})
    return {"nodes": list(nodes.values()), "edges": edges}


def _metrics(versions: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The latest value of each metric (per dataset) for each version, across versions."""
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in versions:
        latest: dict[tuple[str, str | None], Mapping[str, Any]] = {}
        for e in v["evaluation"]:
            latest[(e["metric"], e["dataset"])] = e
        for (metric, dataset), e in latest.items():
            key = metric if dataset is None else f"{metric}@{dataset}"
            series[key].append({"version": v["version"], "value": e["value"], "threshold": e["threshold"]})
    return dict(sorted(series.items()))


def _inventory(adapters: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a in adapters:
        states: dict[str, int] = defaultdict(int)
        for v in a["versions"]:
            states[v["state"]] += 1
        out.append(
            {
                "name": a["name"],
                "versions": len(a["versions"]),
                "latest": a["versions"][-1]["version"] if a["versions"] else None,
                "states": dict(sorted(states.items())),
                "channels": {c["channel"]: c["current"] for c in a["channels"]},
                "owners": sorted({v["created_by"] for v in a["versions"]}),
            }
        )
    return out


def seal(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON report with ``report_sha256``: the sha256 of its canonical JSON without that field."""
    body = {k: v for k, v in report.items() if k != "report_sha256"}
    return {**body, "report_sha256": sha256_digest(canonical_json(body))}
