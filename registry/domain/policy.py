"""Governance policies: a fixed set of rule kinds, read from YAML, evaluated to one result per rule.

Rule kinds (top-level keys of a policy file; every key is optional, unknown keys are errors):

``approvals``      ``count`` (int), ``roles`` (list; empty = any registered user), ``distinct``
                   (approvers must be different people), ``author_may_approve`` (bool)
``required``       ``metadata`` (dotted fields of the version that must be present, e.g.
                   ``description``, ``base.fingerprint``), ``datasets`` (``min`` datasets, and
                   ``fields`` every dataset must have, e.g. ``license``, ``sha256``)
``evals``          a list of ``{metric, min, max, dataset}`` thresholds on the latest value
``verification``   ``mode`` (``static``/``load``/``all``) a passing report must have, and
                   ``on_recorded_base`` (the report's base fingerprint equals the one recorded at push)
``limits``         ``max_rank``, ``allowed_bases`` (names or ``sha256:`` fingerprints),
                   ``allowed_quantization``, ``allowed_peft_types``
``channels``       ``order``: releasing to a channel needs a prior release to the one before it
``signatures``     ``required``: approvals, rejections, releases and rollbacks are signed with
                   the actor's registered Ed25519 key
``name``, ``description``   documentation
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.domain.canonical import sha256_digest
from registry.domain.records import ApprovalRecord
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, Manifest
from registry.errors import PolicyError
from registry.types import DATASET_KEYS, QUANTIZATION_METHODS, ROLES, VERIFY_MODES

__all__ = [
    "ApprovalRecord",
    "Policy",
    "PolicyContext",
    "RuleResult",
    "approval_identity",
    "evaluate",
]

_TOP = ("name", "description", "approvals", "required", "evals", "verification", "limits", "channels", "signatures")
_APPROVALS = ("count", "roles", "distinct", "author_may_approve")
_REQUIRED = ("metadata", "datasets")
_REQUIRED_DATASETS = ("min", "fields")
_EVAL = ("metric", "min", "max", "dataset")
_VERIFICATION = ("mode", "on_recorded_base")
_LIMITS = ("max_rank", "allowed_bases", "allowed_quantization", "allowed_peft_types")
_CHANNELS = ("order",)
_SIGNATURES = ("required",)
_METADATA_ROOTS = ("description", "base", "quantization", "training", "parent", "peft", "datasets")


@dataclass(frozen=True)
class EvalThreshold:
    metric: str
    min: float | None = None
    max: float | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``digest`` is the sha256 of the exact file content."""

    content: str
    name: str = "unnamed"
    description: str | None = None
    approval_count: int = 1
    approval_roles: tuple[str, ...] = ()
    approvals_distinct: bool = True
    author_may_approve: bool = True
    required_metadata: tuple[str, ...] = ()
    min_datasets: int = 0
    dataset_fields: tuple[str, ...] = ()
    evals: tuple[EvalThreshold, ...] = ()
    verification_mode: str | None = None
    verification_on_recorded_base: bool = True
    max_rank: int | None = None
    allowed_bases: tuple[str, ...] = ()
    allowed_quantization: tuple[str, ...] = ()
    allowed_peft_types: tuple[str, ...] = ()
    channel_order: tuple[str, ...] = ()
    signatures_required: bool = False

    @property
    def digest(self) -> str:
        return sha256_digest(self.content.encode("utf-8"))

    @classmethod
    def parse(cls, content: str, source: str = "policy") -> Policy:
        import yaml

        try:
            data = yaml.safe_load(content)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source} is not valid YAML: {exc}") from None
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source} must be a mapping of rule kinds ({', '.join(_TOP)})")
        _keys(data, _TOP, source)
        approvals = _section(data, "approvals", _APPROVALS, source)
        required = _section(data, "required", _REQUIRED, source)
        datasets = required.get("datasets") or {}
        if not isinstance(datasets, Mapping):
            raise PolicyError(f"{source}: required.datasets must be a mapping with min and fields")
        _keys(datasets, _REQUIRED_DATASETS, f"{source}: required.datasets")
        verification = _section(data, "verification", _VERIFICATION, source)
        limits = _section(data, "limits", _LIMITS, source)
        channels = _section(data, "channels", _CHANNELS, source)
        signatures = _section(data, "signatures", _SIGNATURES, source)
        policy = cls(
            content=content,
            name=str(data.get("name") or "unnamed"),
            description=data.get("description"),
            approval_count=_int(approvals, "count", 1, source, "approvals"),
            approval_roles=_roles(approvals.get("roles"), source),
            approvals_distinct=_bool(approvals, "distinct", True, source, "approvals"),
            author_may_approve=_bool(approvals, "author_may_approve", True, source, "approvals"),
            required_metadata=_metadata(required.get("metadata"), source),
            min_datasets=_int(datasets, "min", 0, source, "required.datasets"),
            dataset_fields=_choices(datasets.get("fields"), DATASET_KEYS, source, "required.datasets.fields"),
            evals=_evals(data.get("evals"), source),
            verification_mode=_choice(verification.get("mode"), VERIFY_MODES, source, "verification.mode")
            if verification
            else None,
            verification_on_recorded_base=_bool(verification, "on_recorded_base", True, source, "verification"),
            max_rank=_int(limits, "max_rank", None, source, "limits"),
            allowed_bases=_strings(limits.get("allowed_bases"), source, "limits.allowed_bases"),
            allowed_quantization=_choices(
                limits.get("allowed_quantization"), QUANTIZATION_METHODS, source, "limits.allowed_quantization"
            ),
            allowed_peft_types=tuple(
                s.upper() for s in _strings(limits.get("allowed_peft_types"), source, "limits.allowed_peft_types")
            ),
            channel_order=_strings(channels.get("order"), source, "channels.order"),
            signatures_required=_bool(signatures, "required", False, source, "signatures"),
        )
        if policy.approval_count < 0:
            raise PolicyError(f"{source}: approvals.count must be >= 0")
        return policy


def _keys(data: Mapping[str, Any], allowed: Sequence[str], source: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise PolicyError(f"{source}: unknown key {unknown[0]!r}; allowed here: {', '.join(allowed)}")


def _section(data: Mapping[str, Any], key: str, allowed: Sequence[str], source: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{source}: {key!r} must be a mapping with keys {', '.join(allowed)}")
    _keys(value, allowed, f"{source}: {key}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int | None, source: str, section: str) -> Any:
    value = data.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise PolicyError(f"{source}: {section}.{key} must be an integer, not {value!r}")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool, source: str, section: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(f"{source}: {section}.{key} must be true or false, not {value!r}")
    return value


def _strings(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{source}: {where} must be a list of strings")
    return tuple(value)


def _choices(value: Any, allowed: Sequence[str], source: str, where: str) -> tuple[str, ...]:
    items = _strings(value, source, where)
    for item in items:
        _choice(item, allowed, source, where)
    return items


def _choice(value: Any, allowed: Sequence[str], source: str, where: str) -> str:
    if value not in allowed:
        raise PolicyError(f"{source}: {where} is {value!r}; use one of {', '.join(allowed)}")
    return str(value)


def _roles(value: Any, source: str) -> tuple[str, ...]:
    return _choices(value, ROLES, source, "approvals.roles")


def _metadata(value: Any, source: str) -> tuple[str, ...]:
    fields = _strings(value, source, "required.metadata")
    for f in fields:
        if f.split(".", 1)[0] not in _METADATA_ROOTS:
            raise PolicyError(
                f"{source}: required.metadata field {f!r} is not a version fact; use fields under {', '.join(_METADATA_ROOTS)}"
            )
    return fields


def _evals(value: Any, source: str) -> tuple[EvalThreshold, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError(f"{source}: evals must be a list of {{metric, min, max, dataset}}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or "metric" not in item:
            raise PolicyError(f"{source}: evals[{i}] needs a metric")
        _keys(item, _EVAL, f"{source}: evals[{i}]")
        for bound in ("min", "max"):
            if item.get(bound) is not None and (
                not isinstance(item[bound], (int, float)) or isinstance(item[bound], bool)
            ):
                raise PolicyError(f"{source}: evals[{i}].{bound} must be a number")
        if item.get("min") is None and item.get("max") is None:
            raise PolicyError(f"{source}: evals[{i}] ({item['metric']}) needs min or max")
        out.append(
            EvalThreshold(
                metric=str(item["metric"]), min=item.get("min"), max=item.get("max"), dataset=item.get("dataset")
            )
        )
    return tuple(out)


# -- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyContext:
    """Everything a policy looks at for one version."""

    ref: str
    manifest: Manifest
    author_key: str | None = None
    evals: tuple[EvalRecord, ...] = ()
    verifications: tuple[VerificationReport, ...] = ()
    approvals: tuple[ApprovalRecord, ...] = ()
    released_to: tuple[str, ...] = ()
    channel: str | None = None


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "message": self.message}


def approval_identity(record: ApprovalRecord, signatures_required: bool) -> str:
    """Who approved: the signing key when signatures are required, else the user name."""
    if signatures_required and record.key_fingerprint:
        return record.key_fingerprint
    return record.actor


def _is_author(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> bool:
    if record.actor == ctx.manifest.created_by:
        return True
    return bool(ctx.author_key and record.key_fingerprint and record.key_fingerprint == ctx.author_key)


def _approval_problem(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> str | None:
    """Why this approval cannot count (None when it counts)."""
    if policy.approval_roles and not set(record.roles) & set(policy.approval_roles):
        return f"{record.actor} holds none of the roles {', '.join(policy.approval_roles)}"
    if not policy.author_may_approve and _is_author(policy, ctx, record):
        return f"{record.actor} is the author of {ctx.ref} (or signs with the author's key); the author may not approve"
    if policy.signatures_required and record.signature_valid is not True:
        return f"{record.actor}'s approval is not signed with their registered key"
    return None


def counted_approvals(policy: Policy, ctx: PolicyContext) -> list[ApprovalRecord]:
    counted: list[ApprovalRecord] = []
    identities: set[str] = set()
    for record in ctx.approvals:
        if record.decision != "approve" or _approval_problem(policy, ctx, record):
            continue
        identity = approval_identity(record, policy.signatures_required)
        if policy.approvals_distinct and identity in identities:
            continue
        identities.add(identity)
        counted.append(record)
    return counted


def approval_eligibility(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> str | None:
    """Why ``record`` (about to be added) may not approve, or None."""
    problem = _approval_problem(policy, ctx, record)
    if problem:
        return problem
    if policy.approvals_distinct:
        identity = approval_identity(record, policy.signatures_required)
        for earlier in counted_approvals(policy, ctx):
            if approval_identity(earlier, policy.signatures_required) == identity:
                same = "key" if identity.startswith("sha256:") else "user"
                return f"{ctx.ref} was already approved by {earlier.actor} at {earlier.at} (same {same}); approvers must be distinct"
    return None


def _field(manifest: Manifest, path: str) -> Any:
    value: Any = manifest.to_dict()
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _latest_evals(evals: Sequence[EvalRecord]) -> dict[tuple[str, str | None], EvalRecord]:
    latest: dict[tuple[str, str | None], EvalRecord] = {}
    for e in evals:  # recorded order: later wins
        latest[(e.metric, e.dataset)] = e
    return latest


@dataclass
class _Results:
    items: list[RuleResult] = field(default_factory=list)

    def add(self, rule: str, passed: bool, message: str) -> None:
        self.items.append(RuleResult(rule, passed, message))


def evaluate(policy: Policy, ctx: PolicyContext, skip: Sequence[str] = ()) -> list[RuleResult]:
    """One result per rule the policy has (rules named in ``skip`` are left out)."""
    out = _Results()
    m = ctx.manifest
    if "approvals" not in skip and policy.approval_count > 0:
        counted = counted_approvals(policy, ctx)
        who = ", ".join(sorted({r.actor for r in counted})) or "none"
        roles = f" from {'/'.join(policy.approval_roles)} users" if policy.approval_roles else ""
        rule = f"{policy.approval_count} approval(s){roles}" + (
            ", author excluded" if not policy.author_may_approve else ""
        )
        if len(counted) >= policy.approval_count:
            out.add(
                "approvals", True, f"{len(counted)} of {policy.approval_count} required approvals ({who}); rule: {rule}"
            )
        else:
            out.add(
                "approvals",
                False,
                f"{len(counted)} of {policy.approval_count} required approvals ({who}); rule: {rule}",
            )
    if "required" not in skip:
        for path in policy.required_metadata:
            value = _field(m, path)
            present = value not in (None, "", [], {})
            out.add(f"required:{path}", present, f"{path} is {'recorded' if present else 'missing'}")
        if policy.min_datasets:
            n = len(m.datasets)
            out.add(
                "required:datasets",
                n >= policy.min_datasets,
                f"{n} dataset(s) recorded; at least {policy.min_datasets} required",
            )
        if policy.dataset_fields:
            gaps = [
                f"dataset {d.name!r} lacks {f}"
                for d in m.datasets
                for f in policy.dataset_fields
                if getattr(d, f) in (None, "")
            ]
            if not m.datasets:
                out.add(
                    "required:dataset-fields",
                    False,
                    f"no datasets recorded; each must have {', '.join(policy.dataset_fields)}",
                )
            else:
                out.add(
                    "required:dataset-fields",
                    not gaps,
                    "; ".join(gaps) if gaps else f"every dataset has {', '.join(policy.dataset_fields)}",
                )
    if "evals" not in skip:
        latest = _latest_evals(ctx.evals)
        for t in policy.evals:
            rule = f"evals:{t.metric}" + (f"@{t.dataset}" if t.dataset else "")
            record = latest.get((t.metric, t.dataset))
            bounds = " and ".join(
                b
                for b in (f">= {t.min:g}" if t.min is not None else "", f"<= {t.max:g}" if t.max is not None else "")
                if b
            )
            if record is None:
                out.add(
                    rule,
                    False,
                    f"no {t.metric} result recorded{' on ' + t.dataset if t.dataset else ''}; it must be {bounds} (adapters eval add {ctx.ref} --metric {t.metric}=VALUE)",
                )
                continue
            ok = (t.min is None or record.value >= t.min) and (t.max is None or record.value <= t.max)
            out.add(
                rule,
                ok,
                f"{t.metric} = {record.value:g} (latest, {record.recorded_at} by {record.recorded_by}); required {bounds}",
            )
    if "verification" not in skip and policy.verification_mode:
        out.items.append(_verification(policy, ctx))
    if "limits" not in skip:
        facts = m.peft
        if policy.max_rank is not None:
            rank = facts.max_rank
            out.add(
                "limits:max_rank",
                rank is not None and rank <= policy.max_rank,
                f"rank {rank} (largest of r and rank_pattern); maximum {policy.max_rank}",
            )
        if policy.allowed_bases:
            base = m.base
            ok = base.name in policy.allowed_bases or (
                base.fingerprint is not None and base.fingerprint in policy.allowed_bases
            )
            out.add(
                "limits:allowed_bases",
                ok,
                f"base {base.name} ({base.fingerprint or 'no fingerprint'}) {'is' if ok else 'is not'} among the allowed bases",
            )
        if policy.allowed_quantization:
            q = m.quantization.method
            out.add(
                "limits:allowed_quantization",
                q in policy.allowed_quantization,
                f"training quantization {q}; allowed: {', '.join(policy.allowed_quantization)}",
            )
        if policy.allowed_peft_types:
            peft_type = facts.type
            out.add(
                "limits:allowed_peft_types",
                peft_type in policy.allowed_peft_types,
                f"PEFT type {peft_type}; allowed: {', '.join(policy.allowed_peft_types)}",
            )
    if "channels" not in skip and policy.channel_order and ctx.channel in policy.channel_order:
        index = policy.channel_order.index(ctx.channel)
        if index == 0:
            out.add(
                "channels:order", True, f"{ctx.channel} is the first channel of {' -> '.join(policy.channel_order)}"
            )
        else:
            before = policy.channel_order[index - 1]
            ok = before in ctx.released_to
            out.add(
                "channels:order",
                ok,
                f"{ctx.channel} needs a prior release to {before} ({' -> '.join(policy.channel_order)}); {ctx.ref} "
                + ("was released to it" if ok else f"never was: release it to {before} first"),
            )
    if "signatures" not in skip and policy.signatures_required:
        unsigned = [r for r in ctx.approvals if r.signature_valid is not True]
        out.add(
            "signatures",
            not unsigned,
            "every approval and rejection is signed with the actor's registered key"
            if not unsigned
            else f"{len(unsigned)} approval(s) not signed with a registered key (first: {unsigned[0].actor})",
        )
    return out.items


def _verification(policy: Policy, ctx: PolicyContext) -> RuleResult:
    wanted = policy.verification_mode
    accepted = {"static": {"static", "all"}, "load": {"load", "all"}, "all": {"all"}}[wanted or "all"]
    recorded = ctx.manifest.base.fingerprint
    where = f" on the recorded base {recorded[:19]}…" if policy.verification_on_recorded_base and recorded else ""
    for report in reversed(ctx.verifications):
        if report.mode not in accepted or not report.passed:
            continue
        off_base = recorded is None or report.base_fingerprint != recorded or report.allow_base_mismatch
        if policy.verification_on_recorded_base and off_base:
            continue
        return RuleResult(
            "verification",
            True,
            f"{wanted} verification #{report.id} passed{where} ({report.created_at} by {report.created_by})",
        )
    if policy.verification_on_recorded_base and recorded is None:
        return RuleResult(
            "verification",
            False,
            f"{ctx.ref} has no recorded base fingerprint, so no verification can be on the recorded base; push it again with --base",
        )
    return RuleResult(
        "verification",
        False,
        f"no passing {wanted} verification{where}; run `adapters verify {ctx.ref} --mode {wanted}`",
    )
