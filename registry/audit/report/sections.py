"""The parts of an audit report that are pure functions of facts already gathered: each version's
section, channel histories, the lineage graph, metric series and the inventory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from registry.domain.policy import EvalThreshold, Policy
from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
from registry.domain.rules import RuleResult
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, Manifest

__all__ = [
    "channel_sections",
    "inventory",
    "lineage",
    "metrics",
    "policy_section",
    "threshold",
    "version_section",
    "within",
]


def threshold(t: Any) -> dict[str, Any] | None:
    return {"min": t.min, "max": t.max} if t is not None else None


def within(t: Any, value: float) -> bool | None:
    if t is None:
        return None
    return (t.min is None or value >= t.min) and (t.max is None or value <= t.max)


def lineage(manifests: Sequence[Manifest]) -> dict[str, Any]:
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


def metrics(versions: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
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


def inventory(adapters: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
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


def policy_section(policy: Policy, results: Sequence[RuleResult]) -> dict[str, Any]:
    return {
        "name": policy.name,
        "digest": policy.digest,
        "passed": all(r.passed for r in results),
        "results": [r.to_dict() for r in results],
    }


def _adapter_facts(manifest: Manifest) -> dict[str, Any]:
    p = manifest.peft
    return {
        "peft_type": p.type, "task_type": p.task_type, "r": p.r, "lora_alpha": p.lora_alpha,
        "use_rslora": p.use_rslora, "use_dora": p.use_dora, "target_modules": p.target_modules,
        "modules_to_save": p.modules_to_save, "rank_pattern": p.rank_pattern, "alpha_pattern": p.alpha_pattern,
        "trainable_parameters": p.trainable_parameters if p.trainable_parameters is not None else p.parameters,
        "parameters": p.parameters, "tensors": p.tensors, "dtypes": p.dtypes,
        "peft_version": p.peft_version,
    }  # fmt: skip


def _lifecycle(
    transitions: Sequence[TransitionRecord], moves: Sequence[ChannelMove], within_scope: Any
) -> list[dict[str, Any]]:
    entries = [
        {"at": t.at, "actor": t.actor, "kind": "transition", "action": t.action, "from": t.from_state,
         "to": t.to_state, "reason": t.reason, "policy_digest": t.policy_digest}
        for t in transitions
        if within_scope(t.at)
    ] + [
        {"at": m.at, "actor": m.actor, "kind": "channel", "action": m.action, "channel": m.channel,
         "previous": m.previous, "reason": m.reason, "policy_digest": m.policy_digest,
         "signature_valid": m.signature_valid, "merged": (m.details or {}).get("merged")}
        for m in moves
        if within_scope(m.at)
    ]  # fmt: skip
    return sorted(entries, key=lambda x: x["at"])


def version_section(
    manifest: Manifest,
    digest: str,
    state: str,
    *,
    evals: Sequence[EvalRecord],
    verifications: Sequence[VerificationReport],
    approvals: Sequence[ApprovalRecord],
    transitions: Sequence[TransitionRecord],
    moves: Sequence[ChannelMove],
    thresholds: Mapping[tuple[str, str | None], EvalThreshold],
    policy: dict[str, Any],
    channel_policies: list[dict[str, Any]],
    within_scope: Any,
) -> dict[str, Any]:
    """One version's section of the report (``moves``: the channel moves to this version)."""
    return {
        "name": manifest.name,
        "version": manifest.version,
        "ref": f"{manifest.name}:{manifest.version}",
        "digest": digest,
        "state": state,
        "created_at": manifest.created_at,
        "created_by": manifest.created_by,
        "description": manifest.description,
        "files": [f.to_dict() for f in manifest.files],
        "size": manifest.size,
        "adapter": _adapter_facts(manifest),
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
                "threshold": threshold(thresholds.get((e.metric, e.dataset))),
                "passed": within(thresholds.get((e.metric, e.dataset)), e.value),
            }
            for e in evals
            if within_scope(e.recorded_at)
        ],
        "verification": [r.to_dict() for r in verifications if within_scope(r.created_at)],
        "approvals": [
            {k: v for k, v in a.to_dict().items() if k not in ("signature", "signed_payload")}
            for a in approvals
            if within_scope(a.at)
        ],
        "lifecycle": _lifecycle(transitions, moves, within_scope),
        "policy": policy,
        "channel_policies": channel_policies,
    }


def channel_sections(
    moves: Sequence[ChannelMove], revoked: set[tuple[str, int]], alerts: list[dict[str, Any]], within_scope: Any
) -> list[dict[str, Any]]:
    """Each channel of one adapter with its history; a revoked version ever served is an alert."""
    out = []
    for channel in sorted({m.channel for m in moves}):
        history = [m for m in moves if m.channel == channel]
        for m in history:
            if (m.name, m.version) in revoked:
                alerts.append(
                    {
                        "severity": "critical",
                        "kind": "revoked-in-channel",
                        "subject": f"{m.name}@{channel}",
                        "message": f"{m.name}:{m.version}, now revoked, was served on {channel} ({m.action} at "
                        f"{m.at} by {m.actor})",
                    }
                )
        out.append(
            {
                "channel": channel,
                "current": history[-1].version,
                "ref": f"{history[-1].name}:{history[-1].version}",
                "history": [_move(m) for m in history if within_scope(m.at)],
            }
        )
    return out


def _move(m: ChannelMove) -> dict[str, Any]:
    return {
        "id": m.id, "name": m.name, "channel": m.channel, "action": m.action, "version": m.version,
        "ref": f"{m.name}:{m.version}", "digest": m.digest, "previous": m.previous, "actor": m.actor, "at": m.at,
        "reason": m.reason, "policy_digest": m.policy_digest, "key_fingerprint": m.key_fingerprint,
        "signature_valid": m.signature_valid, "merged": (m.details or {}).get("merged"),
    }  # fmt: skip
