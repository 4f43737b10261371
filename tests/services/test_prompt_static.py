"""Prompt learning's static checks: the dimensions peft gives each type, on grouped-query attention and
encoder-decoder bases, and the adaption prompt pushed and checked like the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tinymodels
from registry import InvalidInput, Registry


@pytest.fixture(scope="module")
def t5_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinymodels.save_base("t5", tmp_path_factory.mktemp("t5") / "base")


def _config(peft_type: str, task: str) -> Any:
    from peft import (
        AdaptionPromptConfig,
        CPTConfig,
        MultitaskPromptTuningConfig,
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
    )

    if peft_type == "PROMPT_TUNING":
        return PromptTuningConfig(task_type=task, num_virtual_tokens=4)
    if peft_type == "P_TUNING":
        return PromptEncoderConfig(task_type=task, num_virtual_tokens=4, encoder_hidden_size=16)
    if peft_type == "PREFIX_TUNING":
        return PrefixTuningConfig(task_type=task, num_virtual_tokens=4)
    if peft_type == "PREFIX_PROJECTION":
        return PrefixTuningConfig(task_type=task, num_virtual_tokens=4, prefix_projection=True, encoder_hidden_size=16)
    if peft_type == "MULTITASK_PROMPT_TUNING":
        return MultitaskPromptTuningConfig(task_type=task, num_virtual_tokens=4, num_tasks=2)
    if peft_type == "CPT":
        return CPTConfig(task_type=task, cpt_token_ids=[1, 2, 3], cpt_mask=[1, 1, 1], cpt_tokens_type_mask=[1, 2, 3])
    if peft_type == "ADAPTION_PROMPT":
        return AdaptionPromptConfig(adapter_len=4, adapter_layers=1)
    raise ValueError(peft_type)


def _save(kind: str, base: Path, peft_type: str, out: Path) -> Path:
    from peft import get_peft_model

    task = "SEQ_2_SEQ_LM" if kind == "t5" else "CAUSAL_LM"
    get_peft_model(tinymodels.load_base(kind, base), _config(peft_type, task)).save_pretrained(str(out))
    return out


CASES = [
    ("llama", "PROMPT_TUNING"),
    ("llama", "P_TUNING"),
    ("llama", "PREFIX_TUNING"),  # 4 heads, 2 key/value heads: token_dim is 32, not 64
    ("llama", "PREFIX_PROJECTION"),
    ("llama", "MULTITASK_PROMPT_TUNING"),
    ("llama", "CPT"),
    ("llama", "ADAPTION_PROMPT"),
    ("t5", "PROMPT_TUNING"),  # encoder and decoder: two transformer submodules
    ("t5", "PREFIX_TUNING"),
]


@pytest.mark.parametrize(("kind", "peft_type"), CASES, ids=[f"{k}-{t.lower()}" for k, t in CASES])
def test_prompt_learning_dimensions_pass_where_peft_built_them(
    sqlite_reg: Registry, tiny_models, t5_base: Path, tmp_path: Path, kind: str, peft_type: str
) -> None:
    base = t5_base if kind == "t5" else tiny_models[kind].base
    adapter = _save(kind, base, peft_type, tmp_path / "adapter")
    sqlite_reg.push(adapter, name="p", base=str(base))
    report = sqlite_reg.verify("p", mode="static")
    failed = [(c.name, c.message) for c in report.checks if c.passed is False]
    assert failed == []
    assert report.passed
    names = {c.name for c in report.checks}
    if peft_type != "ADAPTION_PROMPT":
        assert {"token-dim", "virtual-tokens"} <= names
    with pytest.raises(InvalidInput, match="instead of changing weights"):
        sqlite_reg.merge("p", out=tmp_path / "merged")


def test_a_prefix_for_full_attention_fails_on_grouped_query_attention(
    sqlite_reg: Registry, tiny_models, tmp_path: Path
) -> None:
    """Prefixes saved for a base whose key/value heads are all its heads are twice too wide for a GQA base."""
    full = tinymodels.save_base("llama", tmp_path / "full", num_key_value_heads=4)
    adapter = _save("llama", full, "PREFIX_TUNING", tmp_path / "adapter")
    gqa = tiny_models["llama"].base
    sqlite_reg.push(adapter, name="p", base=str(gqa), allow_unverified_base=False)
    report = sqlite_reg.verify("p", mode="static", allow_base_mismatch=True)
    token_dim = next(c for c in report.checks if c.name == "token-dim")
    assert token_dim.passed is False
    assert "token_dim is 64, the base's key/value width (grouped-query attention" in token_dim.message
    assert token_dim.message.endswith("is 32")
