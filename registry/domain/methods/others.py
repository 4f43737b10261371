"""The newer peft tuners, one :class:`~registry.domain.methods.tuner.Tuner` each.

Shape rules are given where peft's layer fixes a tensor's shape from the base module and the
config (read in each tuner's ``layer.py``, peft 0.21); the other roles are reported as not checked.
Tuners peft itself cannot merge, or whose tensors are shared across modules by position (so one
module cannot be merged alone), are refused by the merge with the reason.
"""

from __future__ import annotations

from registry.domain.methods.tuner import Dims, Tuner

__all__ = ["TUNERS"]

_PEFT_MERGES = "merge it with peft's merge_and_unload, which builds the whole model"


def _triangle(dims: Dims) -> int | None:
    return dims.rank * (dims.rank - 1) // 2 if dims.rank else None


TUNERS = (
    Tuner(
        peft_types=frozenset({"ADAMSS"}),
        prefixes=("adamss_",),
        frozen=("adamss_newB",),
        merge=f"peft rebuilds its subspaces from the whole model when it loads it; {_PEFT_MERGES}",
    ),
    Tuner(peft_types=frozenset({"BEFT"}), prefixes=("beft_",), rules={"beft_bias": (1, "out")}),
    # Lily shares its B experts between the layers of a group and saves a copy per module: its
    # trainable parameters, counted from the file, count every copy (peft counts each shared one once)
    Tuner(
        peft_types=frozenset({"LILY"}),
        prefixes=("lily_",),
        merge="its experts are routed per input, which peft's own Lily layer cannot merge; serve it with peft",
    ),
    Tuner(
        peft_types=frozenset({"POLY"}),
        prefixes=("poly_",),
        rules={"poly_lora_A": ("s", "k", "in", "r"), "poly_lora_B": ("s", "k", "r", "out")},
        merge="it mixes its skills per task at run time, which peft cannot merge; serve it with peft",
    ),
    Tuner(
        peft_types=frozenset({"FROD"}),
        prefixes=("frod_",),
        frozen=("frod_V", "frod_s_indices", "frod_s_size"),
        merge=f"its decompositions are shared by every layer of a kind, so no module merges alone; {_PEFT_MERGES}",
    ),
    Tuner(
        peft_types=frozenset({"GLORA"}),
        prefixes=("glora_",),
        rules={
            "glora_A.Xd": ("out", "r"),
            "glora_A.Xu": ("r", "in"),
            "glora_B.Xd": ("out", "r"),
            "glora_B.Xu": ("r", "in"),
            "glora_C.zeros": ("in", 1),
            "glora_D.zeros": ("out",),
            "glora_E.zeros": ("out",),
        },
        frozen=("glora_C.zeros", "glora_D.zeros", "glora_E.zeros"),
    ),
    Tuner(
        peft_types=frozenset({"UNILORA"}),
        prefixes=("unilora_",),
        merge=f"every module indexes one shared parameter vector by position, so no module merges alone; {_PEFT_MERGES}",
    ),
    Tuner(peft_types=frozenset({"HIRA"}), prefixes=("hira_",), rules={"hira_A": ("r", "in"), "hira_B": ("out", "r")}),
    Tuner(
        peft_types=frozenset({"OSF"}),
        prefixes=("osf_",),
        rules={
            "osf_svd_params.U_low": ("out", "k"),
            "osf_svd_params.S_low": ("k",),
            "osf_svd_params.V_low": ("k", "in"),
        },
    ),
    Tuner(peft_types=frozenset({"GRALORA"}), prefixes=("gralora_",)),
    Tuner(
        peft_types=frozenset({"TINYLORA"}),
        prefixes=("tinylora_",),
        rules={"tinylora_A": ("r", "in"), "tinylora_B": ("out", "r")},
        frozen=("tinylora_A", "tinylora_B", "tinylora_P"),
        merge=f"its trained vectors are shared by modules by position, so no module merges alone; {_PEFT_MERGES}",
    ),
    Tuner(
        peft_types=frozenset({"PSOFT"}),
        prefixes=("psoft_",),
        rules={"psoft_R.weight": (_triangle,), "psoft_R.vector_a": ("r",), "psoft_R.vector_b": ("r",)},
    ),
    Tuner(peft_types=frozenset({"PEANUT"}), prefixes=("peanut_",)),
    Tuner(
        peft_types=frozenset({"SHADOW"}),
        prefixes=("shadow_",),
        merge="its update depends on each input (a shadow network runs beside the base), so peft cannot merge it",
    ),
    Tuner(
        peft_types=frozenset({"SUPERTUNING"}),
        prefixes=("supertuning_",),
        rules={"supertuning_values": ("k",), "supertuning_indices": ("k",)},
        frozen=("supertuning_indices",),
    ),
    Tuner(peft_types=frozenset({"DEFT"}), prefixes=("deft_",), rules={"deft_P": ("out", "r"), "deft_R": ("r", "in")}),
    Tuner(
        peft_types=frozenset({"ADAPTION_PROMPT"}),
        prefixes=("adaption_",),
        parents=True,
        merge="it adds learned prompts and gates to the attention layers instead of changing weights; serve it with peft",
    ),
)
