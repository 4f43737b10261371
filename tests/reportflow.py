"""The scripted regulated workflow the audit-report tests report on (tests/services/test_report*.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tinymodels


def push_ready(
    team: Any, adapter: Path, base: Path, name: str, data: Path, accuracy: float, parent: str | None = None
) -> str:
    """A version pushed with its facts, verified, and approved by bob and carol (signed)."""
    alice = team("alice")
    ref = alice.push(
        adapter,
        name=name,
        base=str(base),
        quantization="nf4",
        description=f"{name} at accuracy {accuracy}",
        datasets=[f"name=tickets,license=cc-by-4.0,revision=2026-10,path={data}"],
        evals={"accuracy": accuracy},
        training={"learning_rate": 0.0002, "epochs": 3},
        parent=parent,
    ).ref
    alice.review(ref)
    assert alice.verify(ref, mode="load", device="cpu").passed
    team("bob").approve(ref, key=team.key("bob"), comment="eval report reviewed")
    team("carol").approve(ref, key=team.key("carol"), comment="risk accepted")
    return ref


def regulated_workflow(team: Any, tiny_models: Any, tmp_path: Path) -> tuple[Any, dict[str, str]]:
    """support:1..3 and chat:1, with releases, a rollback, a revocation and a merged release."""
    llama = tiny_models["llama"]
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps({"q": i}) + "\n" for i in range(40)))
    second = tinymodels.make_adapter("llama", llama.base, tmp_path / "second", seed=7)
    dave = team("dave")
    s1 = push_ready(team, llama.adapter, llama.base, "support", data, 0.88)
    dave.release(s1, channel="staging", key=team.key("dave"))
    dave.release(s1, channel="production", key=team.key("dave"))
    s2 = push_ready(team, second, llama.base, "support", data, 0.91, parent=s1)
    dave.release(s2, channel="staging", key=team.key("dave"))
    dave.release(s2, channel="production", key=team.key("dave"), merge=True, out=tmp_path / "merged-support-2")
    dave.rollback("support", channel="production", key=team.key("dave"), reason="complaints about tone")
    dave.rollback("support", channel="staging", key=team.key("dave"))
    team("carol").revoke(s2, reason="trained on tickets without consent")
    s3 = push_ready(team, llama.adapter, llama.base, "support", data, 0.93)
    team("alice").add_evals(s3, {"accuracy": 0.94}, dataset=None)
    c1 = team("alice").push(llama.adapter, name="chat", base=str(llama.base), description="draft").ref
    team("alice").audit_checkpoint(tmp_path / "cp.json")
    return team, {"s1": s1, "s2": s2, "s3": s3, "c1": c1}
