"""Every allowed-value list, written once: the validators and the CLI's choices read them from here.

Each list is a ``Literal`` type (for annotations) and a tuple of its values (for checks and
``click.Choice``). This module imports nothing but :mod:`typing`, so the CLI can build its options
from it without loading the library.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "BASE_PRECISIONS",
    "COMPUTE_DTYPES",
    "DATASET_KEYS",
    "DEVICES",
    "FOUR_BIT_TYPES",
    "LOAD_QUANTIZATIONS",
    "MERGE_DTYPES",
    "QUANTIZATION_METHODS",
    "REPORT_FORMATS",
    "ROLES",
    "SERVING_ENGINES",
    "STATES",
    "VERIFY_MODES",
    "BasePrecision",
    "ComputeDtype",
    "DatasetKey",
    "Device",
    "FourBitType",
    "LoadQuantization",
    "MergeDtype",
    "QuantizationMethod",
    "ReportFormat",
    "Role",
    "ServingEngine",
    "State",
    "VerifyMode",
]

#: How the base was quantized while the adapter was trained (QLoRA: nf4).
QuantizationMethod = Literal["none", "nf4", "fp4", "int8"]
QUANTIZATION_METHODS: tuple[QuantizationMethod, ...] = get_args(QuantizationMethod)

#: The 4-bit data types bitsandbytes loads a base in for the load check.
FourBitType = Literal["nf4", "fp4"]
FOUR_BIT_TYPES: tuple[FourBitType, ...] = get_args(FourBitType)

#: How the load check loads the base: in 4-bit (nf4, fp4) or 8-bit (int8, LLM.int8) through bitsandbytes, or
#: not quantized (none: in the base's own dtype).
LoadQuantization = Literal["nf4", "fp4", "int8", "none"]
LOAD_QUANTIZATIONS: tuple[LoadQuantization, ...] = get_args(LoadQuantization)

#: Compute dtypes of quantized layers (training records and the load check).
ComputeDtype = Literal["float32", "bfloat16", "float16"]
COMPUTE_DTYPES: tuple[ComputeDtype, ...] = get_args(ComputeDtype)

#: What ``adapters verify`` runs.
VerifyMode = Literal["static", "load", "all"]
VERIFY_MODES: tuple[VerifyMode, ...] = get_args(VerifyMode)

#: Serving engines whose adapter rules ``adapters verify --target`` checks (registry.domain.serving).
ServingEngine = Literal["vllm", "sglang", "lorax", "tgi"]
SERVING_ENGINES: tuple[ServingEngine, ...] = get_args(ServingEngine)

#: Where the load check runs; ``auto`` is CUDA when available.
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = get_args(Device)

#: The dtypes a merged checkpoint can be cast to.
MergeDtype = Literal["bfloat16", "float16", "float32"]
MERGE_DTYPES: tuple[MergeDtype, ...] = get_args(MergeDtype)

#: What the merge adds the adapter's delta to: the base's weights, or their 4-bit round trip.
BasePrecision = Literal["original", "nf4-dequantized"]
BASE_PRECISIONS: tuple[BasePrecision, ...] = get_args(BasePrecision)

#: The keys of a ``--dataset key=value,...`` spec (and of a dataset in a metadata file).
DatasetKey = Literal["name", "uri", "revision", "sha256", "license", "rows", "split", "path"]
DATASET_KEYS: tuple[DatasetKey, ...] = get_args(DatasetKey)

#: Audit report formats.
ReportFormat = Literal["html", "md", "json"]
REPORT_FORMATS: tuple[ReportFormat, ...] = get_args(ReportFormat)

#: Roles a user can be granted (what each may do: registry.domain.roles).
Role = Literal["admin", "author", "reviewer", "risk", "release-manager", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)

#: Lifecycle states of a version (the transitions: registry.domain.lifecycle).
State = Literal["draft", "in_review", "approved", "released", "rejected", "deprecated", "revoked"]
STATES: tuple[State, ...] = get_args(State)
