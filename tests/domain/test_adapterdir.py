"""Facts are read from real peft adapters: config and safetensors headers, no tensor loaded."""

import json
import sys
from pathlib import Path

import tinymodels
from registry.domain.adapterdir import read_adapter_dir


def test_llama_lora_facts(llama) -> None:
    src = read_adapter_dir(llama.adapter)
    f = src.facts
    assert f.type == "LORA"
    assert (f.r, f.lora_alpha, f.use_rslora, f.use_dora) == (4, 8, False, False)
    # "all-linear" was resolved by peft into the explicit module list it saved
    assert "model.layers.0.self_attn.q_proj" in f.target_modules
    assert f.tensors == 2 * 7 * 2  # 2 layers x 7 linear modules x (A, B)
    # every A is [4, in] and every B is [out, 4]; count parameters independently
    expected = sum(t.shape[0] * t.shape[1] for t in src.tensors)
    assert f.parameters == expected > 0
    assert f.dtypes == {"F32": f.tensors}
    assert f.peft_version
    assert {x.path for x in src.files} >= {"adapter_config.json", "adapter_model.safetensors"}


def test_facts_come_from_headers_without_loading_tensors(llama) -> None:
    read_adapter_dir(llama.adapter)
    # the header reader must not need torch (it runs on `adapters push`, which stays light)
    import subprocess

    code = (
        "import sys; from registry.domain.adapterdir import read_adapter_dir; "
        f"read_adapter_dir({str(llama.adapter)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_rslora_dora_patterns_and_modules_to_save(tmp_path: Path, tiny_models) -> None:
    base = tiny_models["llama"].base
    out = tinymodels.make_adapter(
        "llama",
        base,
        tmp_path / "a",
        target_modules=["q_proj", "v_proj"],
        use_rslora=True,
        use_dora=True,
        r=4,
        lora_alpha=16,
        rank_pattern={"v_proj": 8},
        alpha_pattern={"v_proj": 4},
        modules_to_save=["lm_head"],
    )
    f = read_adapter_dir(out).facts
    assert f.use_rslora and f.use_dora
    assert f.rank_pattern == {"v_proj": 8} and f.alpha_pattern == {"v_proj": 4}
    assert f.max_rank == 8
    assert f.modules_to_save == ["lm_head"]
    assert f.target_modules == ["q_proj", "v_proj"]


def test_non_lora_types(tmp_path: Path, tiny_models) -> None:
    from peft import IA3Config, PromptTuningConfig

    base = tiny_models["llama"].base
    ia3 = tinymodels.make_adapter(
        "llama",
        base,
        tmp_path / "ia3",
        peft_config=IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]),
    )
    assert read_adapter_dir(ia3).facts.type == "IA3"
    pt = tinymodels.make_adapter(
        "llama", base, tmp_path / "pt", peft_config=PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5)
    )
    facts = read_adapter_dir(pt).facts
    assert facts.type == "PROMPT_TUNING" and facts.r is None and facts.parameters == 5 * 64


def test_regex_target_modules(tmp_path: Path, llama) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["target_modules"] = r".*\.self_attn\.(q|v)_proj"
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    assert read_adapter_dir(d).facts.target_modules == r".*\.self_attn\.(q|v)_proj"


def test_a_target_that_matches_nothing_is_a_warning_when_others_match(tmp_path: Path, llama) -> None:
    d = llama.copy_adapter(tmp_path / "a")
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["target_modules"] = ["q_proj", "not_a_module"]
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    src = read_adapter_dir(d)
    assert src.warnings and "not_a_module" in src.warnings[0]


def _saved_configs(tmp_path: Path):
    """The adapter_config.json every installed peft config class writes with its defaults."""
    import warnings

    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    for peft_type, cls in PEFT_TYPE_TO_CONFIG_MAPPING.items():
        kwargs = {"task_type": "CAUSAL_LM"} if "task_type" in cls.__dataclass_fields__ else {}
        if peft_type.value == "ADALORA":
            kwargs["total_step"] = 100
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                config = cls(**kwargs)
        except (ImportError, ValueError, TypeError):  # a method needing an optional library or arguments
            continue
        out = tmp_path / peft_type.value
        config.save_pretrained(str(out))
        yield peft_type.value, out / "adapter_config.json"


def test_every_peft_config_class_passes_the_config_checks(tmp_path: Path) -> None:
    from registry.domain.adapterconfig import read_config

    seen = set()
    for peft_type, path in _saved_configs(tmp_path):
        assert read_config(path, path)["peft_type"] == peft_type
        seen.add(peft_type)
    assert {"LORA", "ADALORA", "IA3", "LOHA", "LOKR", "OFT", "BOFT", "VERA", "PROMPT_TUNING"} <= seen


def test_trained_pattern_values_pass_the_config_checks(tmp_path: Path) -> None:
    """Values peft writes after training: AdaLoRA's boolean rank masks, regex pattern keys, a regex target."""
    from registry.domain.adapterconfig import read_config

    cases = {
        "ADALORA": {"rank_pattern": {"base_model.model.model.layers.0.self_attn.q_proj.lora_E": [True, False]}},
        "LORA": {
            "rank_pattern": {r"^model\.layers\.[01]\.self_attn\.q_proj": 8, "v_proj": 2},
            "alpha_pattern": {"v_proj": 4.5},
            "target_modules": r".*\.(q|v)_proj",
            "r": 4,
            "lora_alpha": 8,
        },
        "OFT": {"r": 0, "oft_block_size": 32},
    }
    for peft_type, values in cases.items():
        path = tmp_path / f"{peft_type}.json"
        path.write_text(json.dumps({"peft_type": peft_type, **values}))
        assert read_config(path, path)["peft_type"] == peft_type
