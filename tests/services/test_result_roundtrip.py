"""What a remote client rebuilds from the server's JSON is what the embedded registry returned:
``from_dict(to_dict(x)).to_dict() == to_dict(x)`` for every governance result, on real results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Tiny

from registry import ActionResult, ActivePolicy, Annotated, ChannelState, PolicyCheck, Registry


def _same(cls: Any, result: Any) -> None:
    assert cls.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_governance_results_round_trip(sqlite_reg: Registry, llama: Tiny, tmp_path: Path) -> None:
    reg = sqlite_reg
    reg.push(llama.adapter, name="s", base=str(llama.base), evals={"accuracy": 0.5})
    reg.push(llama.adapter, name="s", base=str(llama.base))
    for action in (reg.review("s:1"), reg.approve("s:1", comment="ok"), reg.review("s:2"), reg.approve("s:2")):
        _same(ActionResult, action)
    _same(ActionResult, reg.release("s:1", channel="production", reason="first"))
    _same(ActionResult, reg.release("s:2", channel="production"))
    _same(ActionResult, reg.rollback("s", channel="production"))
    for state in reg.channels("s"):
        _same(ChannelState, state)
    _same(Annotated, reg.tag("s:2", {"stage": "canary"}))
    _same(Annotated, reg.note("s:2", "a note"))
    policy = tmp_path / "p.yaml"
    policy.write_text("name: strict\nevals:\n  - {metric: accuracy, min: 0.9}\n")
    _same(ActivePolicy, reg.set_policy(policy, channel="production"))
    _same(ActivePolicy, reg.policy())
    check = reg.check_policy("s:1", channel="production")
    assert not check.passed
    _same(PolicyCheck, check)
