"""A pulled adapter is the adapter: PeftModel.from_pretrained gives the same outputs as on the original."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tinymodels
from registry import Registry


@pytest.mark.parametrize("kind", tinymodels.KINDS)
def test_pulled_adapter_gives_identical_outputs(reg: Registry, tiny_models, tmp_path: Path, kind: str) -> None:
    tiny = tiny_models[kind]
    reg.push(tiny.adapter, name=f"{kind}-adapter", base=str(tiny.base))
    out = reg.pull(f"{kind}-adapter", tmp_path / "pulled").path
    original = tinymodels.adapter_outputs(kind, tiny.base, tiny.adapter)
    pulled = tinymodels.adapter_outputs(kind, tiny.base, out)
    assert torch.equal(original, pulled)
    # and the adapter really changes the model (a no-op adapter would make this test meaningless)
    base = tinymodels.load_base(kind, tiny.base)
    with torch.no_grad():
        plain = base(tinymodels.probe_ids())
    plain_out = plain.last_hidden_state if kind == "bert" else plain.logits
    assert not torch.allclose(plain_out, original)
