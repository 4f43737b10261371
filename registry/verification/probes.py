"""What the load check feeds a model and reads back, by task type.

The adapter's ``task_type`` says which head peft trained it with; without one, the base's saved
architecture does (``LlamaForCausalLM``: a causal LM; ``BertModel``: feature extraction). That picks
the transformers Auto class the base is loaded with, and the probe:

=========================  ======================================  ===================================
task                       loaded with                             outputs compared
=========================  ======================================  ===================================
causal LM                  ``AutoModelForCausalLM``                 ``logits`` [1, tokens, vocabulary]
seq2seq LM                 ``AutoModelForSeq2SeqLM``                ``logits`` for fixed decoder inputs
feature extraction         ``AutoModel``                            ``last_hidden_state``
sequence classification    ``AutoModelForSequenceClassification``   ``logits`` [1, labels]
token classification       ``AutoModelForTokenClassification``      ``logits`` [1, tokens, labels]
question answering         ``AutoModelForQuestionAnswering``        start and end logits
masked LM                  ``AutoModelForMaskedLM``                 ``logits``
=========================  ======================================  ===================================

Prompt learning (prompt tuning, p-tuning, multitask prompt tuning, CPT) prepends virtual tokens to the
input, so the adapted outputs have more positions than the base's: they are compared on the real
token positions only (peft puts the virtual ones first). Multitask prompt tuning and Poly take task
ids (task 0 is probed); X-LoRA loads its experts from the subfolders it saved them in and needs the
base's key/value cache off.

The plan (:func:`plan_probe`) reads JSON files and safetensors headers only; torch is imported
inside the functions that build inputs and read outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.domain.adapterdir import read_safetensors_header
from registry.errors import InvalidAdapter

if TYPE_CHECKING:
    import torch

__all__ = ["PROBE_LENGTH", "ProbePlan", "plan_probe", "probe_ids", "probe_inputs", "probe_outputs", "task_inputs"]

PROBE_LENGTH = 16
DECODER_LENGTH = 8

#: peft's task types, and the task the load check probes for each.
TASK_TYPES = {
    "CAUSAL_LM": "causal LM",
    "SEQ_2_SEQ_LM": "seq2seq LM",
    "FEATURE_EXTRACTION": "feature extraction",
    "SEQ_CLS": "sequence classification",
    "TOKEN_CLS": "token classification",
    "QUESTION_ANS": "question answering",
}

#: The transformers class the base is loaded with, per task.
AUTO_CLASSES = {
    "causal LM": "AutoModelForCausalLM",
    "seq2seq LM": "AutoModelForSeq2SeqLM",
    "feature extraction": "AutoModel",
    "sequence classification": "AutoModelForSequenceClassification",
    "token classification": "AutoModelForTokenClassification",
    "question answering": "AutoModelForQuestionAnswering",
    "masked LM": "AutoModelForMaskedLM",
}

#: A saved architecture's name ending -> its task (the first match wins; ``Model`` alone is a bare backbone).
_ARCHITECTURE_ENDINGS = (
    ("ForCausalLM", "causal LM"),
    ("LMHeadModel", "causal LM"),
    ("ForSequenceClassification", "sequence classification"),
    ("ForTokenClassification", "token classification"),
    ("ForQuestionAnswering", "question answering"),
    ("ForMaskedLM", "masked LM"),
    ("Model", "feature extraction"),
)

#: peft types whose forward takes ``task_ids``.
_TASK_ID_TYPES = frozenset({"MULTITASK_PROMPT_TUNING", "POLY"})

#: The classification head a SEQ_CLS / TOKEN_CLS adapter saves (peft adds these to modules_to_save).
_HEAD_WEIGHTS = ("score.weight", "classifier.out_proj.weight", "classifier.weight")


@dataclass(frozen=True)
class ProbePlan:
    """How the base is loaded and probed for one adapter."""

    task: str  # a key of AUTO_CLASSES, or "model" (the saved architecture's own class)
    model_class: str  # the transformers class the base is loaded with
    reason: str  # why: "the adapter's task_type SEQ_CLS", "the base's architecture BertModel"
    peft_type: str
    encoder_decoder: bool = False
    num_labels: int | None = None  # a classification head's size, when the base config does not have it
    xlora_experts: tuple[tuple[str, str], ...] = ()  # X-LoRA: (expert, the subfolder peft saved it in)
    refusal: str | None = None  # why peft cannot load this adapter at all (it is then not loaded)

    @property
    def task_ids(self) -> bool:
        return self.peft_type in _TASK_ID_TYPES

    def describe(self) -> str:
        return f"probed as {self.task} ({self.model_class}, from {self.reason})"

    def load_kwargs(self) -> dict[str, Any]:
        """What ``from_pretrained`` of the base needs besides the dtype and quantization."""
        kwargs: dict[str, Any] = {}
        if self.num_labels is not None:
            kwargs["num_labels"] = self.num_labels
        if self.xlora_experts:
            kwargs["use_cache"] = False  # X-LoRA refuses a base with its cache on
        return kwargs

    def peft_kwargs(self, adapter_dir: Path) -> dict[str, Any]:
        """What ``PeftModel.from_pretrained`` needs besides the base and the directory."""
        if self.xlora_experts:  # the config names the experts' paths at training time: point it at the subfolders
            from peft import PeftConfig

            config = PeftConfig.from_pretrained(str(adapter_dir))
            # keyed by folder, as peft's own load from the Hub does: it names the experts it loads "0", "1", ...
            config.adapters = {folder: str(adapter_dir / folder) for _, folder in self.xlora_experts}
            return {"config": config}
        return {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _task_of_architecture(arch: str, encoder_decoder: bool) -> str | None:
    if arch.endswith("ForConditionalGeneration"):
        return "seq2seq LM" if encoder_decoder else None
    for ending, task in _ARCHITECTURE_ENDINGS:
        if arch.endswith(ending):
            return task
    return None


def _head_size(adapter_dir: Path) -> int | None:
    """The number of labels of the classification head the adapter saves, if it saves one."""
    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        return None
    try:
        tensors = read_safetensors_header(path)
    except InvalidAdapter:  # an unreadable header: peft's load says what is wrong with it
        return None
    for ending in _HEAD_WEIGHTS:
        for t in tensors:
            if t.name.endswith("." + ending) and len(t.shape) == 2:
                return int(t.shape[0])
    return None


def plan_probe(adapter_dir: Path, base_dir: Path) -> ProbePlan:
    """The Auto class and probe for this adapter on this base (see the module's table)."""
    adapter = _read_json(adapter_dir / "adapter_config.json")
    base = _read_json(base_dir / "config.json")
    peft_type = str(adapter.get("peft_type") or "LORA")
    encoder_decoder = bool(base.get("is_encoder_decoder", False))
    archs = [str(a) for a in base.get("architectures") or []]
    task_type = adapter.get("task_type")
    task: str | None = None
    if task_type in TASK_TYPES:
        task, reason = TASK_TYPES[str(task_type)], f"the adapter's task_type {task_type}"
    else:
        for arch in archs:
            task = _task_of_architecture(arch, encoder_decoder)
            if task is not None:
                reason = f"the base's architecture {arch}"
                break
    if task is None:
        if archs:  # an architecture no Auto class above names: load that very class
            return ProbePlan("model", archs[0], f"the base's architecture {archs[0]}", peft_type, encoder_decoder)
        task = "seq2seq LM" if encoder_decoder else "causal LM" if base.get("is_decoder") else "feature extraction"
        reason = "the base config (no architectures saved)"
    num_labels = None
    if task in ("sequence classification", "token classification"):
        head = _head_size(adapter_dir)
        saved_head = any(_task_of_architecture(a, encoder_decoder) == task for a in archs)
        if head is not None and not saved_head:
            num_labels = head
    experts: tuple[tuple[str, str], ...] = ()
    refusal = None
    if peft_type == "XLORA":
        experts, refusal = _xlora_experts(adapter, adapter_dir)
    return ProbePlan(task, AUTO_CLASSES[task], reason, peft_type, encoder_decoder, num_labels, experts, refusal)


def _xlora_key_loads(key: str) -> bool:
    """Whether peft's X-LoRA expert loader can place ``key``: it strips dotted prefixes until the key starts
    with ``model.`` (not ``model.model.``), and never returns on a key where none does."""
    while not (key.startswith("model.") and not key.startswith("model.model.")):
        dot = key.find(".")
        if dot < 0:
            return False
        key = key[dot + 1 :]
    return True


def _xlora_experts(adapter: dict[str, Any], adapter_dir: Path) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """X-LoRA's experts as (name, subfolder): peft saves expert i in folder "i". And why peft cannot load them
    from this directory, if it cannot (its loader would loop forever on some files: checked here first)."""
    names = [str(k) for k in adapter.get("adapters") or {}] if isinstance(adapter.get("adapters"), dict) else []
    experts = tuple((name, str(i)) for i, name in enumerate(names))
    missing = [folder for _, folder in experts if not (adapter_dir / folder / "adapter_model.safetensors").is_file()]
    if not experts or missing:
        where = f"no {', '.join(missing)} subfolder with adapter_model.safetensors" if missing else "no experts"
        return experts, (
            f"this X-LoRA adapter has {where}: peft saves expert i of its config's adapters in subfolder i, and "
            "loading it from the paths its config recorded at training time would verify other files than the stored ones"
        )
    for _, folder in experts:
        path = adapter_dir / folder / "adapter_model.safetensors"
        try:
            keys = [t.name for t in read_safetensors_header(path)]
        except InvalidAdapter as exc:
            return experts, f"expert subfolder {folder} of this X-LoRA adapter is unreadable: {exc}"
        stuck = [k for k in keys if not _xlora_key_loads(k)]
        if stuck or not keys:
            return experts, (
                f"its X-LoRA expert subfolder {folder} holds "
                f"{'no tensors' if not keys else 'tensors that are not a LoRA expert (' + ', '.join(stuck[:3]) + ')'}, "
                "on which peft's X-LoRA loader never returns (peft's own save_pretrained writes the X-LoRA "
                "classifier there); put each LoRA expert's own saved directory in its subfolder"
            )
    return experts, None


def probe_ids(vocab_size: int, length: int = PROBE_LENGTH) -> tuple[int, ...]:
    """Fixed token ids spread over the vocabulary (deterministic, never special ids 0-2 only)."""
    return tuple((3 + i * 7919) % vocab_size for i in range(length))


def _decoder_ids(config: Any, token_ids: tuple[int, ...]) -> list[int]:
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(config, "pad_token_id", None) or 0
    return [int(start), *token_ids[: DECODER_LENGTH - 1]]


def probe_inputs(plan: ProbePlan, config: Any, token_ids: tuple[int, ...], device: str) -> dict[str, torch.Tensor]:
    """The probe's keyword arguments to the model (batch of one)."""
    import torch

    ids = torch.tensor([token_ids], device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if plan.encoder_decoder:
        inputs["decoder_input_ids"] = torch.tensor([_decoder_ids(config, token_ids)], device=device)
    return inputs


def task_inputs(plan: ProbePlan, device: str) -> dict[str, torch.Tensor]:
    """What only the adapted model takes: task ids (task 0) for multitask prompt tuning and Poly."""
    import torch

    return {"task_ids": torch.zeros(1, dtype=torch.long, device=device)} if plan.task_ids else {}


def probe_outputs(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's outputs for ``inputs`` as a float32 CPU tensor [1, positions, columns]."""
    import torch

    with torch.no_grad():
        out = model(**inputs)
    start, end = getattr(out, "start_logits", None), getattr(out, "end_logits", None)
    tensor: Any
    if start is not None and end is not None:  # question answering: a start and an end score per token
        tensor = torch.stack((start, end), dim=-1)
    else:
        tensor = getattr(out, "logits", None)
        if tensor is None:
            tensor = out.last_hidden_state
    result: torch.Tensor = tensor.detach().float().cpu()
    if result.dim() == 2:  # sequence classification: one row of label scores
        result = result.unsqueeze(1)
    return result
