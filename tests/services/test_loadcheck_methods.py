"""The load check for every peft tuner, every task type and every ``--quant``: real peft adapters on tiny
random models (Llama with grouped-query attention, T5, BERT), pushed and verified as a user would.

* prompt learning is compared on the real token positions (the virtual tokens peft prepends left out),
  multitask prompt tuning and Poly get task ids;
* the base is loaded with the Auto class of the adapter's task (seq2seq with decoder inputs, sequence and
  token classification, feature extraction for a bare ``BertModel``);
* a tuner peft cannot run on 4-bit layers (LoHa, LoKr, HRA, DeLoRA, ...) gets one sentence saying so and
  the full-precision load; a fault of the adapter itself is not blamed on the quantization;
* ``--quant none|fp4|int8`` and their probe-reference keys;
* every tuner in ``peft.PeftType`` that peft builds on the tiny Llama gives a passing or plainly explained
  result in 4-bit and in full precision, never an "unexpected" error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tinymodels
from registry import InvalidInput, Registry

#: peft_type -> its config's options on the tiny Llama, beyond task_type CAUSAL_LM and targets q_proj, v_proj
#: (``target_modules: None``: the tuner's own default targets).
TUNERS: dict[str, dict[str, Any]] = {
    "LORA": {"r": 4},
    "ADALORA": {"total_step": 10, "init_r": 4, "target_r": 2},
    "ADAMSS": {},
    "BOFT": {"boft_block_size": 4},
    "IA3": {"feedforward_modules": []},
    "BEFT": {},
    "LILY": {},
    "LOHA": {"r": 4},
    "LOKR": {"r": 4},
    "OFT": {"oft_block_size": 16, "r": 0},
    "POLY": {"n_tasks": 2},
    "LN_TUNING": {"target_modules": None},
    "VERA": {"r": 16},
    "FROD": {},
    "PVERA": {"r": 16},
    "FOURIERFT": {"n_frequency": 20},
    "GLORA": {"r": 4},
    "HRA": {"r": 4},
    "VBLORA": {"vector_length": 16, "num_vectors": 32, "r": 4},
    "UNILORA": {},
    "MISS": {"r": 16},
    "RANDLORA": {"r": 16},
    "ROAD": {"group_size": 16},
    "TRAINABLE_TOKENS": {"token_indices": [3, 5, 7], "target_modules": ["embed_tokens"]},
    "HIRA": {"r": 4},
    "SHIRA": {"r": 2},
    "C3A": {"block_size": 16},
    "WAVEFT": {"n_frequency": 100},
    "OSF": {},
    "DELORA": {"r": 4},
    "GRALORA": {"r": 16},
    "TINYLORA": {"r": 2},
    "PSOFT": {"r": 16},
    "PEANUT": {"r": 16},
    "SHADOW": {"r": 4, "target_modules": None},  # it wraps whole decoder blocks, its default
    "SUPERTUNING": {},
    "DEFT": {"r": 4},
    "PROMPT_TUNING": {"num_virtual_tokens": 4},
    "P_TUNING": {"num_virtual_tokens": 4, "encoder_hidden_size": 32},
    "PREFIX_TUNING": {"num_virtual_tokens": 4},
    "MULTITASK_PROMPT_TUNING": {"num_virtual_tokens": 4, "num_tasks": 2},
    "CPT": {},
    "CARTRIDGE": {"num_virtual_tokens": 4},
    "ADAPTION_PROMPT": {"adapter_len": 4, "adapter_layers": 1, "target_modules": None},  # its default: self_attn
}
#: X-LoRA mixes LoRA experts saved in subfolders, with no tensor at the root: push refuses such a directory
#: (multi-adapter directories are their own issue), so its load check is tested on the directory itself.
NOT_PUSHED = {"XLORA"}
#: Tuners whose ``init_weights=False`` is not a usable trained state (peft leaves TinyLoRA's vectors as
#: torch.empty garbage): they keep their initialisation, moved off it by the perturbation as training would.
KEEP_INIT = {"ADAMSS", "VBLORA", "TINYLORA"}
#: Tuners named in the issue as ones peft cannot run on 4-bit layers.
NOT_ON_4BIT = ["LOHA", "LOKR", "HRA", "DELORA"]


def _config(peft_type: str, task_type: str = "CAUSAL_LM", targets: list[str] | None = None) -> Any:
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    cls = PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]
    fields = set(cls.__dataclass_fields__)
    settings: dict[str, Any] = {"task_type": task_type}
    if "target_modules" in fields:
        settings["target_modules"] = targets or ["q_proj", "v_proj"]
    for init in ("init_weights", "init_lora_weights"):
        if init in fields and peft_type not in KEEP_INIT:
            settings[init] = False
    settings.update(TUNERS[peft_type])
    return cls(**{k: v for k, v in settings.items() if v is not None})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Adapters built once per module (per xdist worker), by name."""
    return {}


@pytest.fixture(scope="module")
def t5_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinymodels.save_base("t5", tmp_path_factory.mktemp("t5") / "base")


def _tuner(built: dict[str, Path], tiny_models, tmp_path_factory, peft_type: str) -> Path:
    if peft_type not in built:
        out = tmp_path_factory.mktemp(peft_type.lower()) / "adapter"
        base = tiny_models["llama"].base
        built[peft_type] = tinymodels.make_adapter("llama", base, out, peft_config=_config(peft_type), perturb=True)
    return built[peft_type]


def _check(report, name: str):
    matches = [c for c in report.checks if c.name == name]
    assert matches, f"no {name} check in {[(c.name, c.message) for c in report.checks]}"
    return matches[0]


def _names(report) -> list[str]:
    return [c.name for c in report.checks]


def _failures(report) -> list[tuple[str, str]]:
    return [(c.name, c.message) for c in report.checks if c.passed is False]


def _peft_version() -> str:
    from importlib.metadata import version

    return version("peft")


def _no_unexpected(report) -> None:
    for c in report.checks:
        assert "unexpected" not in c.message.lower(), (c.name, c.message)


# -- every tuner peft can build on the tiny Llama ------------------------------------------------


def test_every_peft_type_has_a_case() -> None:
    import peft

    missing = {t.value for t in peft.PeftType} - set(TUNERS) - NOT_PUSHED
    assert missing == set(), f"peft types without a load-check case: {sorted(missing)}"


@pytest.mark.parametrize("peft_type", sorted(TUNERS))
def test_every_tuner_loads_in_4bit_or_says_why_and_in_full_precision(
    sqlite_reg: Registry, tiny_models, tmp_path_factory, built, peft_type: str
) -> None:
    llama = tiny_models["llama"]
    adapter = _tuner(built, tiny_models, tmp_path_factory, peft_type)
    sqlite_reg.push(adapter, name="t", base=str(llama.base))

    four_bit = sqlite_reg.verify("t", str(llama.base), mode="load", device="cpu")
    _no_unexpected(four_bit)
    assert four_bit.passed, _failures(four_bit)
    if "quantized-load" in _names(four_bit):  # peft cannot run it on 4-bit layers: said, then full precision
        note = _check(four_bit, "quantized-load")
        names = _names(four_bit)
        assert note.passed is None and names.index("quantized-load") + 1 == names.index("adapter-load")
        assert f"cannot run this {peft_type} adapter on 4-bit (nf4) layers" in note.message
        assert "the checks below loaded the base in full precision (float32) instead, where it runs" in note.message
        assert four_bit.quantization["method"] == "none"
    else:
        assert four_bit.quantization["method"] == "nf4"
    assert _check(four_bit, "adapter-effect").passed and _check(four_bit, "finite-outputs").passed

    full = sqlite_reg.verify("t", str(llama.base), mode="load", device="cpu", quant="none")
    _no_unexpected(full)
    assert full.passed, _failures(full)
    assert "quantized-load" not in _names(full)
    assert full.quantization == {
        "method": "none",
        "double_quant": None,
        "compute_dtype": "float32",
        "device_type": "cpu",
    }
    assert "base loaded in full precision (float32) on cpu" in _check(full, "adapter-load").message


def test_xlora_loads_its_experts_from_their_subfolders(tiny_models, tmp_path: Path) -> None:
    """X-LoRA on its directory: experts in subfolders 0, 1, ... (their training-time paths in the config are
    not used). peft 0.21.2's own save writes the X-LoRA classifier where the expert belongs, and its loader never
    returns on that file: the load check refuses it, saying so, instead of hanging."""
    import shutil

    import torch
    from peft import XLoraConfig, get_peft_model

    from registry.verification.loadcheck import LoadSettings, run_load_check

    llama = tiny_models["llama"]
    model = tinymodels.load_base("llama", llama.base)
    model.config.use_cache = False  # X-LoRA refuses a base with its cache on
    config = XLoraConfig(task_type="CAUSAL_LM", hidden_size=64, adapters={"e0": str(llama.adapter)}, xlora_depth=1)
    torch.manual_seed(1)
    xlora = tmp_path / "xlora"
    get_peft_model(model, config).save_pretrained(str(xlora))

    def run(quant: str) -> Any:
        settings = LoadSettings.choose("cpu", quant, True, None, llama.base)
        return run_load_check(llama.base, xlora, settings, lambda key: None)

    as_saved = run("nf4")
    [refused] = as_saved.checks
    assert refused.name == "adapter-load" and refused.passed is False
    assert refused.message.startswith(f"peft {_peft_version()} cannot load the adapter: its X-LoRA expert subfolder 0")
    assert "holds tensors that are not a LoRA expert (base_model.internal_xlora_classifier" in refused.message
    shutil.rmtree(xlora / "0")
    shutil.copytree(llama.adapter, xlora / "0")  # the expert's own saved directory, where peft looks for it
    four_bit = run("nf4")
    assert four_bit.passed, [(c.name, c.message) for c in four_bit.checks]
    note = next(c for c in four_bit.checks if c.name == "quantized-load")
    assert note.passed is None and "cannot run this XLORA adapter on 4-bit (nf4) layers" in note.message
    assert four_bit.settings.quant == "none"
    full = run("none")
    assert full.passed and "quantized-load" not in [c.name for c in full.checks]
    assert next(c for c in full.checks if c.name == "adapter-effect").passed
    shutil.rmtree(xlora / "0")
    [missing] = run("none").checks
    assert missing.passed is False and "has no 0 subfolder with adapter_model.safetensors" in missing.message


# -- prompt learning -------------------------------------------------------------------------------


@pytest.mark.parametrize("peft_type", ["PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING", "CPT"])
def test_prompt_learning_is_compared_on_the_real_token_positions(
    sqlite_reg: Registry, tiny_models, tmp_path_factory, built, peft_type: str
) -> None:
    llama = tiny_models["llama"]
    sqlite_reg.push(_tuner(built, tiny_models, tmp_path_factory, peft_type), name="p", base=str(llama.base))
    first = sqlite_reg.verify("p", str(llama.base), mode="load", device="cpu")
    assert first.passed, _failures(first)
    assert first.quantization["method"] == "nf4" and "quantized-load" not in _names(first)
    effect = _check(first, "adapter-effect").message
    assert "on the 16 real token positions" in effect and "virtual tokens peft prepends left out" in effect
    second = sqlite_reg.verify("p", str(llama.base), mode="load", device="cpu")  # compared with the first
    assert second.passed and _check(second, "probe-reference").passed
    assert second.reference["settings"] == "nf4/dq=1/float32/cpu"


def test_prefix_tuning_on_grouped_query_attention(sqlite_reg: Registry, tiny_models, tmp_path_factory, built) -> None:
    llama = tiny_models["llama"]
    config = json.loads((llama.base / "config.json").read_text())
    assert config["num_key_value_heads"] < config["num_attention_heads"]  # the case peft sizes by kv heads
    sqlite_reg.push(_tuner(built, tiny_models, tmp_path_factory, "PREFIX_TUNING"), name="p", base=str(llama.base))
    for quant in ("nf4", "none"):
        report = sqlite_reg.verify("p", str(llama.base), mode="load", device="cpu", quant=quant)
        assert report.passed, _failures(report)
        assert report.quantization["method"] == quant
        assert "virtual tokens" not in _check(report, "adapter-effect").message  # a prefix adds no positions
        assert _check(report, "adapter-keys").passed


# -- probes by task type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peft_type", "task_type", "reason"),
    [
        ("LORA", "SEQ_2_SEQ_LM", "the adapter's task_type SEQ_2_SEQ_LM"),
        ("LORA", None, "the base's architecture T5ForConditionalGeneration"),
        ("PROMPT_TUNING", "SEQ_2_SEQ_LM", "the adapter's task_type SEQ_2_SEQ_LM"),
    ],
)
def test_t5_is_probed_as_seq2seq_with_decoder_inputs(
    sqlite_reg: Registry, t5_base: Path, tmp_path: Path, peft_type: str, task_type: str | None, reason: str
) -> None:
    from peft import LoraConfig, PromptTuningConfig

    if peft_type == "LORA":
        config: Any = LoraConfig(task_type=task_type, r=4, target_modules=["q", "v"], init_lora_weights=False)
    else:
        config = PromptTuningConfig(task_type=task_type, num_virtual_tokens=4)
    adapter = tinymodels.make_adapter("t5", t5_base, tmp_path / "a", peft_config=config, perturb=True)
    sqlite_reg.push(adapter, name="t5", base=str(t5_base))
    for quant in ("nf4", "none"):
        report = sqlite_reg.verify("t5", str(t5_base), mode="load", device="cpu", quant=quant)
        assert report.passed, _failures(report)
        assert report.quantization["method"] == quant and "quantized-load" not in _names(report)
        assert f"probed as seq2seq LM (AutoModelForSeq2SeqLM, from {reason})" in _check(report, "adapter-load").message
        # the decoder's positions are compared: the encoder's virtual tokens add none
        assert "virtual tokens" not in _check(report, "adapter-effect").message


@pytest.mark.parametrize(
    ("task", "task_type", "probed"),
    [
        ("seq-cls", "SEQ_CLS", "sequence classification (AutoModelForSequenceClassification"),
        ("token-cls", "TOKEN_CLS", "token classification (AutoModelForTokenClassification"),
    ],
)
def test_classification_adapters_on_a_bare_bert_base(
    sqlite_reg: Registry, tiny_models, tmp_path: Path, task: str, task_type: str, probed: str
) -> None:
    """The base is saved as BertModel; the adapter's task type gives the head, whose size its saved copy gives."""
    from peft import LoraConfig

    bert = tiny_models["bert"]
    config = LoraConfig(task_type=task_type, r=4, target_modules=["query", "value"], init_lora_weights=False)
    adapter = tinymodels.make_adapter("bert", bert.base, tmp_path / task, peft_config=config, task=task)
    sqlite_reg.push(adapter, name="cls", base=str(bert.base))
    first = sqlite_reg.verify("cls", str(bert.base), mode="load", device="cpu")
    assert first.passed, _failures(first)
    assert f"probed as {probed}, from the adapter's task_type {task_type})" in _check(first, "adapter-load").message
    assert _check(first, "adapter-keys").passed  # the head came from the adapter (modules_to_save)
    second = sqlite_reg.verify("cls", str(bert.base), mode="load", device="cpu")
    assert second.passed and _check(second, "probe-reference").passed  # the same outputs every time
    full = sqlite_reg.verify("cls", str(bert.base), mode="load", device="cpu", quant="none")
    assert full.passed, _failures(full)


def test_an_adapter_without_task_type_on_a_bare_bert_is_feature_extraction(sqlite_reg: Registry, tiny_models) -> None:
    bert = tiny_models["bert"]
    sqlite_reg.push(bert.adapter, name="b", base=str(bert.base))
    report = sqlite_reg.verify("b", str(bert.base), mode="load", device="cpu")
    assert report.passed, _failures(report)
    message = _check(report, "adapter-load").message
    assert "probed as feature extraction (AutoModel, from the base's architecture BertModel)" in message


def test_the_probe_plan_by_task_type_and_architecture(tmp_path: Path) -> None:
    """JSON and headers only: the Auto class, and why (no torch needed)."""
    from safetensors.numpy import save_file

    from registry.verification.probes import plan_probe

    def plan(adapter: dict[str, Any], base: dict[str, Any], head: int | None = None):
        d = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        (d / "a").mkdir(parents=True)
        (d / "b").mkdir()
        (d / "a" / "adapter_config.json").write_text(json.dumps(adapter))
        (d / "b" / "config.json").write_text(json.dumps(base))
        if head is not None:
            import numpy as np

            save_file(
                {"base_model.model.classifier.weight": np.zeros((head, 8), "float32")},
                str(d / "a" / "adapter_model.safetensors"),
            )
        return plan_probe(d / "a", d / "b")

    llama = plan({"peft_type": "LORA"}, {"architectures": ["LlamaForCausalLM"]})
    assert (llama.task, llama.model_class) == ("causal LM", "AutoModelForCausalLM")
    gpt2 = plan({"peft_type": "LORA", "task_type": None}, {"architectures": ["GPT2LMHeadModel"]})
    assert gpt2.task == "causal LM" and gpt2.reason == "the base's architecture GPT2LMHeadModel"
    t5 = plan({"peft_type": "LORA"}, {"architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True})
    assert (t5.task, t5.encoder_decoder) == ("seq2seq LM", True)
    bert = plan({"peft_type": "LORA"}, {"architectures": ["BertModel"]})
    assert (bert.task, bert.model_class) == ("feature extraction", "AutoModel")
    cls = plan({"peft_type": "LORA", "task_type": "SEQ_CLS"}, {"architectures": ["BertModel"]}, head=3)
    assert (cls.model_class, cls.num_labels) == ("AutoModelForSequenceClassification", 3)
    assert cls.reason == "the adapter's task_type SEQ_CLS"
    saved_head = plan({"task_type": "SEQ_CLS"}, {"architectures": ["BertForSequenceClassification"]}, head=3)
    assert saved_head.num_labels is None  # the base's own head and config say how many labels
    other = plan({"peft_type": "LORA"}, {"architectures": ["LlavaForConditionalGeneration"]})
    assert (other.task, other.model_class) == ("model", "LlavaForConditionalGeneration")
    tasks = plan({"peft_type": "MULTITASK_PROMPT_TUNING", "task_type": "CAUSAL_LM"}, {})
    assert tasks.task_ids and tasks.reason == "the adapter's task_type CAUSAL_LM"


# -- tuners peft cannot run on 4-bit layers, and faults that are the adapter's own ----------------------


@pytest.mark.parametrize("peft_type", NOT_ON_4BIT)
def test_a_tuner_peft_cannot_run_on_4bit_is_said_so_and_loaded_in_full_precision(
    sqlite_reg: Registry, tiny_models, tmp_path_factory, built, peft_type: str
) -> None:
    llama = tiny_models["llama"]
    sqlite_reg.push(_tuner(built, tiny_models, tmp_path_factory, peft_type), name="q", base=str(llama.base))
    report = sqlite_reg.verify("q", str(llama.base), mode="load", device="cpu")
    assert report.passed, _failures(report)
    note = _check(report, "quantized-load")
    assert note.passed is None
    assert note.message.startswith(
        f"peft {_peft_version()} cannot run this {peft_type} adapter on 4-bit (nf4) layers: "
    )
    assert note.message.endswith("the checks below loaded the base in full precision (float32) instead, where it runs")
    assert note.details  # what the 4-bit load said, in full
    assert "base loaded in full precision (float32) on cpu" in _check(report, "adapter-load").message
    assert report.quantization == {
        "method": "none",
        "double_quant": None,
        "compute_dtype": "float32",
        "device_type": "cpu",
    }
    # its probe reference is the full-precision one: a later default run and a --quant none run compare with it
    again = sqlite_reg.verify("q", str(llama.base), mode="load", device="cpu")
    assert again.passed and _check(again, "probe-reference").passed
    assert again.reference["settings"] == "none/float32/cpu"
    full = sqlite_reg.verify("q", str(llama.base), mode="load", device="cpu", quant="none")
    assert full.passed and "quantized-load" not in _names(full) and _check(full, "probe-reference").passed


def test_a_fault_of_the_adapter_is_not_blamed_on_the_quantization(sqlite_reg: Registry, llama, tmp_path: Path) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    wide = tinymodels.save_base("llama", tmp_path / "wide", seed=5, hidden_size=128)
    report = sqlite_reg.verify("a", str(wide), mode="load", device="cpu", allow_base_mismatch=True)
    assert not report.passed and "quantized-load" not in _names(report)
    load = _check(report, "adapter-load")
    assert load.passed is False and "size mismatch" in load.message
    assert any(d.startswith("in full precision (float32) too: adapter-load: ") for d in load.details), load.details
    assert report.quantization["method"] == "nf4"  # the settings asked for: nothing ran in their place


# -- --quant none, fp4, int8 ---------------------------------------------------------------------------------


def test_quant_none_loads_the_base_in_its_own_dtype(sqlite_reg: Registry, llama) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    first = sqlite_reg.verify("a", str(llama.base), mode="all", device="cpu", quant="none")
    assert first.passed, _failures(first)
    assert first.quantization == {
        "method": "none",
        "double_quant": None,
        "compute_dtype": "float32",
        "device_type": "cpu",
    }
    assert _check(first, "adapter-load").message.startswith("base loaded in full precision (float32) on cpu")
    assert first.reference is None  # the first load on this setting records the reference
    second = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="none")
    assert _check(second, "probe-reference").passed and second.reference["settings"] == "none/float32/cpu"
    four_bit = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu")  # another setting, its own reference
    assert four_bit.passed and four_bit.reference is None and "probe-reference" not in _names(four_bit)
    bf16 = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="none", compute_dtype="bfloat16")
    assert bf16.passed and bf16.quantization["compute_dtype"] == "bfloat16"
    assert "in full precision (bfloat16)" in _check(bf16, "adapter-load").message


def test_a_base_saved_in_bfloat16_loads_in_bfloat16_with_quant_none(tmp_path: Path) -> None:
    import torch

    from registry.verification.loadcheck import LoadSettings

    base = tmp_path / "bf16"
    tinymodels.build_model("llama").to(torch.bfloat16).save_pretrained(str(base))
    assert LoadSettings.choose("cpu", "none", True, None, base).compute_dtype == "bfloat16"
    assert LoadSettings.choose("cpu", "nf4", True, None, base).compute_dtype == "float32"  # the 4-bit compute dtype
    config = json.loads((base / "config.json").read_text())
    config.pop("dtype", None)
    config.pop("torch_dtype", None)
    (base / "config.json").write_text(json.dumps(config))  # no dtype in the config: the weights' headers say it
    assert LoadSettings.choose("cpu", "none", True, None, base).compute_dtype == "bfloat16"


def test_quant_fp4_keeps_its_reference_key(sqlite_reg: Registry, llama) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    first = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="fp4")
    assert first.passed and first.quantization["method"] == "fp4" and first.quantization["double_quant"] is True
    assert _check(first, "adapter-load").message.startswith("base loaded in 4-bit (fp4) on cpu")
    second = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="fp4")
    assert _check(second, "probe-reference").passed
    assert second.reference["settings"] == "fp4/dq=1/float32/cpu"  # the key references were recorded under


def test_quant_int8_runs_llm_int8_on_the_cpu(sqlite_reg: Registry, llama) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    report = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="int8")
    assert report.passed, _failures(report)
    assert report.quantization == {
        "method": "int8",
        "double_quant": None,
        "compute_dtype": "float32",
        "device_type": "cpu",
    }
    assert _check(report, "adapter-load").message.startswith("base loaded in 8-bit (LLM.int8) on cpu")
    again = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="int8")
    assert _check(again, "probe-reference").passed and again.reference["settings"] == "int8/float32/cpu"


def test_an_unknown_quantization_is_refused_naming_the_choices(sqlite_reg: Registry, llama) -> None:
    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    with pytest.raises(InvalidInput, match=r"unknown load quantization 'int4'; use nf4, fp4, int8, none"):
        sqlite_reg.verify("a", str(llama.base), quant="int4")
    assert sqlite_reg.show("a").verifications == ()


def test_a_submitted_report_names_a_load_setting_the_server_knows(sqlite_reg: Registry, llama) -> None:
    """What the server rebuilds a submitted report's reference key from: every --quant, and nothing else."""
    from registry.verification.loadcheck import LoadSettings

    assert LoadSettings("cpu", "nf4", True, "float32").key == "nf4/dq=1/float32/cpu"
    assert LoadSettings("cuda", "fp4", False, "bfloat16").key == "fp4/dq=0/bfloat16/cuda"
    assert LoadSettings("cpu", "none", None, "float32").key == "none/float32/cpu"
    assert LoadSettings("cpu", "int8", True, "float32").double_quant is None  # not a 4-bit setting
    with pytest.raises(InvalidInput, match="unknown load quantization 'int3'"):
        LoadSettings("cpu", "int3", None, "float32")
    with pytest.raises(InvalidInput, match="needs double_quant true or false"):
        LoadSettings("cpu", "nf4", None, "float32")
    from registry.domain.clock import now_iso

    sqlite_reg.push(llama.adapter, name="a", base=str(llama.base))
    sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="none")  # records the reference
    report = sqlite_reg.verify("a", str(llama.base), mode="load", device="cpu", quant="none").to_dict()
    assert report["reference"]["settings"] == "none/float32/cpu"
    fresh = {**report, "created_at": now_iso()}  # as a client computes and submits it (adapters verify remotely)
    recorded = sqlite_reg.record_verification("a", fresh)
    assert recorded.quantization["method"] == "none" and recorded.reference == report["reference"]
    forged = {**fresh, "quantization": {**report["quantization"], "method": "int4"}}
    with pytest.raises(InvalidInput, match="unknown load quantization 'int4'"):
        sqlite_reg.record_verification("a", forged)
