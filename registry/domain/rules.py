"""Evaluating a policy: one result per rule, each with a sentence saying why it passed or failed.

The rule kinds are fixed (:mod:`registry.domain.policy` parses them); each has its function here,
run in a fixed order by :func:`evaluate`. Approval counting (roles, separation of duties, distinct
approvers, signatures) is shared by the ``approvals`` rule and by the check an approver must pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.domain.adapterdir import AdapterContents
from registry.domain.policy import Policy
from registry.domain.records import ApprovalRecord
from registry.domain.serving import BaseFacts, serving_checks
from registry.domain.verification import VerificationReport
from registry.domain.versions import EvalRecord, Manifest

__all__ = [
    "PolicyContext",
    "RuleResult",
    "approval_eligibility",
    "approval_identity",
    "approval_problems",
    "counted_approvals",
    "eligibility_problems",
    "evaluate",
]


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
    #: user -> everyone who created that user's account, granted them a role or registered their key
    grantors: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: the version's config and tensor headers, read from its stored blobs when a rule needs them (``serving``);
    #: None from it: they could not be read (a damaged blob store, in the audit report)
    adapter: Callable[[], AdapterContents | None] | None = None


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuleResult:
        return cls(str(d["rule"]), bool(d["passed"]), str(d["message"]))


def approval_identity(record: ApprovalRecord, signatures_required: bool) -> str:
    """Who approved: the signing key when signatures are required, else the user name."""
    if signatures_required and record.key_fingerprint:
        return record.key_fingerprint
    return record.actor


def _is_author(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> bool:
    if record.actor == ctx.manifest.created_by:
        return True
    return bool(ctx.author_key and record.key_fingerprint and record.key_fingerprint == ctx.author_key)


def approval_problems(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> list[str]:
    """Every reason this approval cannot count (none when it counts)."""
    problems = []
    if policy.approval_roles and not set(record.roles) & set(policy.approval_roles):
        problems.append(f"{record.actor} holds none of the roles {', '.join(policy.approval_roles)}")
    if not policy.author_may_approve and _is_author(policy, ctx, record):
        problems.append(
            f"{record.actor} is the author of {ctx.ref} (or signs with the author's key); the author may not approve"
        )
    author = ctx.manifest.created_by
    if (
        policy.approvals_independent_of_author
        and record.actor != author
        and author in ctx.grantors.get(record.actor, ())
    ):
        problems.append(
            f"{record.actor}'s account, a role or a key was granted by {author}, the author of {ctx.ref}; the policy "
            "requires approvers independent of the author"
        )
    if policy.signatures_required and record.signature_valid is not True:
        problems.append(f"{record.actor}'s approval is not signed with their registered key")
    return problems


def _approval_problem(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> str | None:
    problems = approval_problems(policy, ctx, record)
    return problems[0] if problems else None


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
    """Why ``record`` (about to be added) may not approve, or None (the first of :func:`eligibility_problems`)."""
    problems = eligibility_problems(policy, ctx, record)
    return problems[0] if problems else None


def eligibility_problems(policy: Policy, ctx: PolicyContext, record: ApprovalRecord) -> list[str]:
    """Every reason ``record`` (about to be added) may not approve."""
    problems = approval_problems(policy, ctx, record)
    if policy.approvals_distinct:
        identity = approval_identity(record, policy.signatures_required)
        for earlier in counted_approvals(policy, ctx):
            if approval_identity(earlier, policy.signatures_required) == identity:
                same = "key" if identity.startswith("sha256:") else "user"
                problems.append(
                    f"{ctx.ref} was already approved by {earlier.actor} at {earlier.at} (same {same}); approvers must "
                    "be distinct"
                )
                break
    return problems


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
    """One result per rule the policy has (rule kinds named in ``skip`` are left out), every one
    evaluated: a caller refusing an action reports all the rules it fails at once."""
    out = _Results()
    for kind, rule in _RULES:
        if kind not in skip:
            rule(policy, ctx, out)
    return out.items


def _approvals(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    if policy.approval_count <= 0:
        return
    counted = counted_approvals(policy, ctx)
    who = ", ".join(sorted({r.actor for r in counted})) or "none"
    roles = f" from {'/'.join(policy.approval_roles)} users" if policy.approval_roles else ""
    rule = f"{policy.approval_count} approval(s){roles}" + (
        ", author excluded" if not policy.author_may_approve else ""
    )
    message = f"{len(counted)} of {policy.approval_count} required approvals ({who}); rule: {rule}"
    out.add("approvals", len(counted) >= policy.approval_count, message)


def _required(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    m = ctx.manifest
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
        fields = ", ".join(policy.dataset_fields)
        if not m.datasets:
            out.add("required:dataset-fields", False, f"no datasets recorded; each must have {fields}")
            return
        gaps = [
            f"dataset {d.name!r} lacks {f}"
            for d in m.datasets
            for f in policy.dataset_fields
            if getattr(d, f) in (None, "")
        ]
        out.add("required:dataset-fields", not gaps, "; ".join(gaps) if gaps else f"every dataset has {fields}")


def _evals(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    latest = _latest_evals(ctx.evals)
    for t in policy.evals:
        rule = f"evals:{t.metric}" + (f"@{t.dataset}" if t.dataset else "")
        record = latest.get((t.metric, t.dataset))
        bounds = " and ".join(
            b for b in (f">= {t.min:g}" if t.min is not None else "", f"<= {t.max:g}" if t.max is not None else "") if b
        )
        if record is None:
            on = f" on {t.dataset}" if t.dataset else ""
            out.add(
                rule,
                False,
                f"no {t.metric} result recorded{on}; it must be {bounds} (adapters eval add {ctx.ref} --metric {t.metric}=VALUE)",
            )
            continue
        ok = (t.min is None or record.value >= t.min) and (t.max is None or record.value <= t.max)
        out.add(
            rule,
            ok,
            f"{t.metric} = {record.value:g} (latest, {record.recorded_at} by {record.recorded_by}); required {bounds}",
        )


def _verification_rule(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    if policy.verification_mode:
        out.items.append(_verification(policy, ctx))


def _limits(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    m = ctx.manifest
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
        verdict = "is" if ok else "is not"
        out.add(
            "limits:allowed_bases",
            ok,
            f"base {base.name} ({base.fingerprint or 'no fingerprint'}) {verdict} among the allowed bases",
        )
    if policy.allowed_quantization:
        q = m.quantization.method
        allowed = ", ".join(policy.allowed_quantization)
        out.add(
            "limits:allowed_quantization",
            q in policy.allowed_quantization,
            f"training quantization {q}; allowed: {allowed}",
        )
    if policy.allowed_peft_types:
        allowed = ", ".join(policy.allowed_peft_types)
        out.add(
            "limits:allowed_peft_types",
            facts.type in policy.allowed_peft_types,
            f"PEFT type {facts.type}; allowed: {allowed}",
        )


def _channels(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    if not policy.channel_order or ctx.channel not in policy.channel_order:
        return
    order = " -> ".join(policy.channel_order)
    index = policy.channel_order.index(ctx.channel)
    if index == 0:
        out.add("channels:order", True, f"{ctx.channel} is the first channel of {order}")
        return
    before = policy.channel_order[index - 1]
    ok = before in ctx.released_to
    outcome = "was released to it" if ok else f"never was: release it to {before} first"
    out.add("channels:order", ok, f"{ctx.channel} needs a prior release to {before} ({order}); {ctx.ref} {outcome}")


def _signatures(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    if not policy.signatures_required:
        return
    unsigned = [r for r in ctx.approvals if r.signature_valid is not True]
    out.add(
        "signatures",
        not unsigned,
        "every approval and rejection is signed with the actor's registered key"
        if not unsigned
        else f"{len(unsigned)} approval(s) not signed with a registered key (first: {unsigned[0].actor})",
    )


def _serving(policy: Policy, ctx: PolicyContext, out: _Results) -> None:
    """Per serving target: one passing result when none of the engine's rules fails on the stored adapter,
    else one failing result per rule it fails (each with the engine's sentence and the way out)."""
    targets = policy.serving_targets
    if not targets:
        return
    names = [f"serving:{t.engine}" for t in targets]
    names = [n if names.count(n) == 1 else f"{n}#{names[:i].count(n) + 1}" for i, n in enumerate(names)]
    adapter = ctx.adapter() if ctx.adapter is not None else None
    if adapter is None:
        for name, t in zip(names, targets, strict=True):
            out.add(name, False, f"{t.describe()}: the version's config and tensor headers could not be read from "
                    "the blob store, so its serving rules were not checked; run `adapters fsck`")  # fmt: skip
        return
    for name, t in zip(names, targets, strict=True):
        checks = serving_checks(t, adapter.config, adapter.tensors, BaseFacts(model_type=t.model_type))
        failed = [c for c in checks if c.passed is False]
        for c in failed:
            out.add(name, False, f"{t.describe()}, {c.name}: {c.message}")
        if not failed:
            unchecked = [c.name for c in checks if c.passed is None]
            note = f" (not checked: {', '.join(unchecked)})" if unchecked else ""
            out.add(name, True, f"{t.describe()}: all {len(checks) - len(unchecked)} of its rules pass{note}")


#: Rule kinds in the order their results are reported, each with its evaluation.
_RULES: tuple[tuple[str, Callable[[Policy, PolicyContext, _Results], None]], ...] = (
    ("approvals", _approvals),
    ("required", _required),
    ("evals", _evals),
    ("verification", _verification_rule),
    ("limits", _limits),
    ("channels", _channels),
    ("serving", _serving),
    ("signatures", _signatures),
)


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
