"""The policy language: parsing (unknown keys named) and every rule kind's evaluation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from registry.domain.adapterdir import PeftFacts
from registry.domain.lineage import Dataset, Quantization
from registry.domain.policy import Policy
from registry.domain.records import ApprovalRecord
from registry.domain.rules import PolicyContext, approval_eligibility, evaluate
from registry.domain.verification import VerificationReport
from registry.domain.versions import BaseModel, EvalRecord, Manifest
from registry.errors import PolicyError

ROOT = Path(__file__).resolve().parents[2]


def manifest(**kw) -> Manifest:
    facts = PeftFacts(
        type="LORA",
        task_type=None,
        r=16,
        lora_alpha=32,
        use_rslora=False,
        use_dora=False,
        target_modules=["q_proj"],
        modules_to_save=None,
        rank_pattern={},
        alpha_pattern={},
        fan_in_fan_out=False,
        peft_version="0.21",
        base_model_name_or_path=None,
        tensors=2,
        parameters=10,
        dtypes={"F32": 2},
    )
    defaults = dict(
        name="a",
        version=1,
        created_at="2026-01-01T00:00:00.000000Z",
        created_by="alice",
        files=(),
        peft=facts,
        base=BaseModel(name="org/base", fingerprint="sha256:" + "b" * 64),
        quantization=Quantization("nf4"),
        datasets=(Dataset(name="tickets", license="mit", sha256="c" * 64),),
        description="d",
    )
    defaults.update(kw)
    return Manifest(**defaults)


def approval(actor: str, roles=("reviewer",), key: str | None = None, signed: bool | None = None) -> ApprovalRecord:
    return ApprovalRecord(
        actor=actor, decision="approve", roles=tuple(roles), at="t", key_fingerprint=key, signature_valid=signed
    )


def report(passed=True, mode="load", fingerprint="sha256:" + "b" * 64, allow=False) -> VerificationReport:
    from registry.domain.compat import Check

    return VerificationReport(
        name="a",
        version=1,
        digest="d",
        mode=mode,
        base_name="b",
        base_fingerprint=fingerprint,
        recorded_base_fingerprint="sha256:" + "b" * 64,
        allow_base_mismatch=allow,
        checks=(Check("x", passed, "m"),),
        not_checked=(),
        created_at="t",
        created_by="v",
        id=7,
    )


REGULATED = Policy.parse((ROOT / "policies" / "regulated.yaml").read_text(), "regulated.yaml")


def results(policy: Policy, ctx: PolicyContext) -> dict[str, bool]:
    return {r.rule: r.passed for r in evaluate(policy, ctx)}


def test_shipped_policies_parse() -> None:
    default = Policy.parse((ROOT / "policies" / "default.yaml").read_text())
    assert (default.approval_count, default.author_may_approve, default.signatures_required) == (1, True, False)
    assert (REGULATED.approval_count, REGULATED.approval_roles, REGULATED.author_may_approve) == (
        2,
        ("reviewer", "risk"),
        False,
    )
    assert REGULATED.dataset_fields == ("license", "sha256") and REGULATED.signatures_required
    assert REGULATED.verification_mode == "load" and REGULATED.channel_order == ("staging", "production")
    assert REGULATED.digest.startswith("sha256:")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("aprovals: {count: 1}", "unknown key 'aprovals'"),
        ("approvals: {count: 1, quorum: 2}", "unknown key 'quorum'"),
        ("limits: {max_rank: 8, max_size: 1}", "unknown key 'max_size'"),
        ("required: {datasets: {min: 1, feilds: [license]}}", "unknown key 'feilds'"),
        ("evals: [{metric: acc, minimum: 0.9}]", "unknown key 'minimum'"),
        ("approvals: {roles: [boss]}", "'boss'"),
        ("approvals: {count: two}", "must be an integer"),
        ("verification: {mode: quick}", "'quick'"),
        ("limits: {allowed_quantization: [int3]}", "'int3'"),
        ("evals: [{metric: acc}]", "needs min or max"),
        ("required: {metadata: [colour]}", "not a version fact"),
        ("signatures: {required: yes please}", "true or false"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_bad_policies_name_the_key(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as exc:
        Policy.parse(text, "p.yaml")
    assert fragment in str(exc.value) and "p.yaml" in str(exc.value)


def test_approvals_count_roles_author_and_distinct_keys() -> None:
    policy = replace(REGULATED, signatures_required=False)
    ctx = PolicyContext(ref="a:1", manifest=manifest(), author_key="sha256:alice-key")
    assert results(policy, ctx)["approvals"] is False
    one = replace(ctx, approvals=(approval("bob"),))
    assert results(policy, one)["approvals"] is False
    two = replace(ctx, approvals=(approval("bob"), approval("carol", roles=("risk",))))
    assert results(policy, two)["approvals"] is True
    # the author, a user without the role, and the same person twice do not count
    for extra in (approval("alice", roles=("reviewer",)), approval("erin", roles=("author",)), approval("bob")):
        assert results(policy, replace(ctx, approvals=(approval("bob"), extra)))["approvals"] is False
    signed = replace(REGULATED)
    # with signatures, identity is the key: two names with one key count once, the author's key never
    same_key = replace(ctx, approvals=(approval("bob", key="k1", signed=True), approval("bob2", key="k1", signed=True)))
    assert results(signed, same_key)["approvals"] is False
    authors_key = replace(
        ctx,
        approvals=(approval("bob", key="k1", signed=True), approval("mallory", key="sha256:alice-key", signed=True)),
    )
    assert results(signed, authors_key)["approvals"] is False
    assert approval_eligibility(signed, ctx, approval("mallory", key="sha256:alice-key", signed=True)).startswith(
        "mallory is the author"
    )
    unsigned = replace(ctx, approvals=(approval("bob", key="k1", signed=True), approval("carol", roles=("risk",))))
    assert results(signed, unsigned)["approvals"] is False


def test_required_lineage_fields() -> None:
    ctx = PolicyContext(ref="a:1", manifest=manifest())
    assert results(REGULATED, ctx)["required:dataset-fields"] is True
    gap = manifest(datasets=(Dataset(name="tickets", license="mit"), Dataset(name="chats", sha256="d" * 64)))
    res = {r.rule: r for r in evaluate(REGULATED, replace(ctx, manifest=gap))}
    assert not res["required:dataset-fields"].passed
    assert res["required:dataset-fields"].message == "dataset 'tickets' lacks sha256; dataset 'chats' lacks license"
    assert results(REGULATED, replace(ctx, manifest=manifest(datasets=())))["required:datasets"] is False
    assert results(REGULATED, replace(ctx, manifest=manifest(description=None)))["required:description"] is False
    assert (
        results(REGULATED, replace(ctx, manifest=manifest(base=BaseModel(name="x"))))["required:base.fingerprint"]
        is False
    )


def test_eval_thresholds_read_the_latest_value() -> None:
    def rec(value: float, dataset=None) -> EvalRecord:
        return EvalRecord("accuracy", value, dataset, "t", "u", "push")

    ctx = PolicyContext(ref="a:1", manifest=manifest())
    assert results(REGULATED, ctx)["evals:accuracy"] is False  # nothing recorded
    assert results(REGULATED, replace(ctx, evals=(rec(0.9),)))["evals:accuracy"] is True
    assert results(REGULATED, replace(ctx, evals=(rec(0.9), rec(0.8))))["evals:accuracy"] is False  # latest wins
    assert results(REGULATED, replace(ctx, evals=(rec(0.8), rec(0.9))))["evals:accuracy"] is True
    assert results(REGULATED, replace(ctx, evals=(rec(0.95, "other"),)))["evals:accuracy"] is False  # another dataset


def test_verification_must_be_a_passing_load_on_the_recorded_base() -> None:
    ctx = PolicyContext(ref="a:1", manifest=manifest())
    assert results(REGULATED, replace(ctx, verifications=(report(),)))["verification"] is True
    assert results(REGULATED, replace(ctx, verifications=(report(mode="static"),)))["verification"] is False
    assert results(REGULATED, replace(ctx, verifications=(report(mode="all"),)))["verification"] is True
    assert results(REGULATED, replace(ctx, verifications=(report(passed=False),)))["verification"] is False
    assert (
        results(REGULATED, replace(ctx, verifications=(report(fingerprint="sha256:" + "e" * 64),)))["verification"]
        is False
    )
    assert results(REGULATED, replace(ctx, verifications=(report(allow=True),)))["verification"] is False


def test_limits() -> None:
    ctx = PolicyContext(ref="a:1", manifest=manifest())
    assert all(v for k, v in results(REGULATED, ctx).items() if k.startswith("limits"))
    big = manifest(peft=replace(manifest().peft, r=8, rank_pattern={"v_proj": 128}))
    assert results(REGULATED, replace(ctx, manifest=big))["limits:max_rank"] is False
    assert (
        results(REGULATED, replace(ctx, manifest=manifest(quantization=Quantization("int8"))))[
            "limits:allowed_quantization"
        ]
        is False
    )
    assert (
        results(REGULATED, replace(ctx, manifest=manifest(peft=replace(manifest().peft, type="IA3"))))[
            "limits:allowed_peft_types"
        ]
        is False
    )
    bases = replace(REGULATED, allowed_bases=("sha256:" + "b" * 64,))
    assert results(bases, ctx)["limits:allowed_bases"] is True
    assert results(replace(REGULATED, allowed_bases=("org/other",)), ctx)["limits:allowed_bases"] is False


def test_channel_order() -> None:
    ctx = PolicyContext(ref="a:1", manifest=manifest(), channel="production")
    assert results(REGULATED, ctx)["channels:order"] is False
    assert results(REGULATED, replace(ctx, released_to=("staging",)))["channels:order"] is True
    assert results(REGULATED, replace(ctx, channel="staging"))["channels:order"] is True
    assert "channels:order" not in results(REGULATED, replace(ctx, channel="canary"))


# -- hostile policy files: YAML bombs, huge files, devices -----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "description:\n"
        + '  l0: &l0 ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)),
        "name: &n strict\ndescription: *n\n",
    ],
    ids=["billion-laughs", "one-alias"],
)
def test_yaml_aliases_in_a_policy_are_refused(text: str) -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml.*anchors and aliases .* are not accepted"):
        Policy.parse(text, "p.yaml")


def test_a_policy_over_the_size_limit_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml is larger than 1 MiB"):
        Policy.parse("description: " + "x" * (2 << 20) + "\n", "p.yaml")


def test_a_policy_file_that_is_huge_or_a_device_is_refused_by_set_policy(sqlite_reg, tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("description: " + "x" * (2 << 20) + "\n")
    with pytest.raises(PolicyError, match=r"huge\.yaml is larger than 1 MiB"):
        sqlite_reg.set_policy(huge)
    with pytest.raises(PolicyError, match=r"/dev/zero is not a regular file"):
        sqlite_reg.set_policy("/dev/zero")
    assert sqlite_reg.policy().builtin
