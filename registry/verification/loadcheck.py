"""The load check: really run the adapter on the base, quantized as it will be served.

The base is loaded with transformers, quantized through bitsandbytes as ``--quant`` says (``nf4`` or
``fp4``: 4-bit, the default NF4; ``int8``: 8-bit LLM.int8; on CUDA or on the CPU, where bitsandbytes'
CPU backend runs both) or not at all (``none``: in the base's own dtype), with the Auto class its task
calls for (:mod:`registry.verification.probes`: causal LM, seq2seq LM with decoder inputs, feature
extraction, sequence or token classification, ...). The adapter is attached with peft and a fixed probe
input is run with the adapter enabled and disabled:

* ``adapter-load``: peft attached the adapter without error;
* ``adapter-keys``: every tensor in the adapter file was loaded into the model and every
  adapter parameter of the model came from the file (peft only warns about either);
* ``finite-outputs``: no NaN or infinity;
* ``adapter-effect``: the outputs differ from the base's (an adapter that changes nothing fails);
  prompt learning's outputs are compared on the real token positions, the virtual tokens peft
  prepends left out;
* ``probe-reference``: outputs match the reference recorded by the first passing load with
  the same base fingerprint, quantization settings and device type, within
  ``|out - ref| <= ATOL + RTOL * max|ref|``.

Many peft tuners have no layer for bitsandbytes' quantized linears (LoHa, LoKr, HRA, DeLoRA, X-LoRA, ...):
attaching them fails, or they run wrongly or not at all. So when the quantized load does not run
cleanly (the base, the attach or the probe raised, keys were lost, outputs are not finite, or the adapter
has no effect), the load is made again on the base in full precision. If the adapter runs cleanly there,
the trouble was the quantization: a ``quantized-load`` check (passed None) says so in one sentence and the
checks that follow are the full-precision load's (the report records those settings). If it fails in full
precision too, the fault is the adapter's: the quantized load's checks are reported, the full-precision
result added to the failed check's details. Nothing a library raises escapes as an error: every failure
is a check with its reason.

torch, transformers, peft and bitsandbytes are imported here only, inside functions.
"""

from __future__ import annotations

import gc
import json
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._quiet import quiet_libraries
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.compat import Check
from registry.errors import InvalidInput
from registry.types import COMPUTE_DTYPES, DEVICES, FOUR_BIT_TYPES, LOAD_QUANTIZATIONS
from registry.verification.probes import ProbePlan, plan_probe, probe_ids

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATOL",
    "LOAD_DTYPES",
    "RTOL",
    "LoadOutcome",
    "LoadSettings",
    "ProbeSample",
    "base_dtype",
    "run_load_check",
]

#: Drift tolerance against a recorded probe reference: |out - ref| <= ATOL + RTOL * max|ref|.
ATOL = 1e-3
RTOL = 1e-2
SAMPLE_COLUMNS = 32
_NO_EFFECT = 1e-6
#: The dtypes a base can be loaded in: the compute dtypes, and float64 for a base saved so (``--quant none``).
LOAD_DTYPES = (*COMPUTE_DTYPES, "float64")
_SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}
_MAX_ERROR = 300


@dataclass(frozen=True)
class LoadSettings:
    """How the base is loaded for the load check: ``quant`` one of LOAD_QUANTIZATIONS; ``compute_dtype`` the
    quantized layers' compute dtype, or for ``none`` the dtype the whole base is loaded in."""

    device: str  # "cpu" or "cuda"
    quant: str = "nf4"
    double_quant: bool | None = True  # 4-bit only; None for int8 and none
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.quant not in LOAD_QUANTIZATIONS:
            raise InvalidInput(f"unknown load quantization {self.quant!r}; use {', '.join(LOAD_QUANTIZATIONS)}")
        if self.device not in DEVICES or self.device == "auto":
            raise InvalidInput(f"unknown load device {self.device!r}; use cpu or cuda")
        if self.compute_dtype not in LOAD_DTYPES:
            raise InvalidInput(f"unknown load dtype {self.compute_dtype!r}; use {', '.join(LOAD_DTYPES)}")
        if self.four_bit and not isinstance(self.double_quant, bool):
            raise InvalidInput(f"a {self.quant} load needs double_quant true or false, not {self.double_quant!r}")
        if not self.four_bit:
            object.__setattr__(self, "double_quant", None)

    @classmethod
    def choose(
        cls, device: str, quant: str, double_quant: bool, compute_dtype: str | None, base_dir: Path
    ) -> LoadSettings:
        """The settings for a load as asked: an unset dtype is the base's own for ``none``, else float32 on
        the CPU and bfloat16 on CUDA."""
        if compute_dtype is None:
            compute_dtype = base_dtype(base_dir) if quant == "none" else "bfloat16" if device == "cuda" else "float32"
        return cls(device, quant, double_quant, compute_dtype)

    @property
    def four_bit(self) -> bool:
        return self.quant in FOUR_BIT_TYPES

    @property
    def quantized(self) -> bool:
        return self.quant != "none"

    @property
    def key(self) -> str:
        """Probe references are comparable only between loads with equal keys (the 4-bit keys are those
        recorded before int8 and none existed)."""
        if self.four_bit:
            return f"{self.quant}/dq={int(bool(self.double_quant))}/{self.compute_dtype}/{self.device}"
        return f"{self.quant}/{self.compute_dtype}/{self.device}"

    @property
    def layers(self) -> str:
        """How the base's linear layers are held: ``4-bit (nf4)``, ``8-bit (LLM.int8)``, ``full-precision``."""
        if self.four_bit:
            return f"4-bit ({self.quant})"
        return "8-bit (LLM.int8)" if self.quant == "int8" else "full-precision"

    def describe(self) -> str:
        """``in 4-bit (nf4)``, ``in 8-bit (LLM.int8)``, ``in full precision (float32)``."""
        return f"in {self.layers}" if self.quantized else f"in full precision ({self.compute_dtype})"

    def full_precision(self, dtype: str) -> LoadSettings:
        return LoadSettings(self.device, "none", None, dtype)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.quant,
            "double_quant": self.double_quant,
            "compute_dtype": self.compute_dtype,
            "device_type": self.device,
        }


def base_dtype(base_dir: Path) -> str:
    """The dtype the base was saved in: its config's ``dtype`` (``torch_dtype`` before transformers 5), else
    its first floating tensor's in the safetensors headers, else float32."""
    try:
        config = json.loads((base_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    for field in ("dtype", "torch_dtype"):
        value = config.get(field) if isinstance(config, dict) else None
        if isinstance(value, str) and value in LOAD_DTYPES:
            return value
    from registry.domain.adapterdir import declared_tensors

    for shard in sorted(base_dir.glob("*.safetensors")):
        try:
            tensors = declared_tensors(shard)
        except Exception:  # safetensors' SafetensorError or OSError: verification reads the headers itself
            continue
        for t in tensors:
            if t.dtype in _SAFETENSORS_DTYPES:
                return _SAFETENSORS_DTYPES[t.dtype]
    return "float32"


@dataclass(frozen=True)
class ProbeSample:
    """A compact, comparable record of the probe's outputs."""

    token_ids: tuple[int, ...]
    positions: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]  # outputs[0, position, :SAMPLE_COLUMNS]
    mean: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_ids": list(self.token_ids),
            "positions": list(self.positions),
            "values": [list(v) for v in self.values],
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeSample:
        return cls(
            token_ids=tuple(d["token_ids"]),
            positions=tuple(d["positions"]),
            values=tuple(tuple(float(x) for x in row) for row in d["values"]),
            mean=float(d["mean"]),
            std=float(d["std"]),
        )

    @property
    def digest(self) -> str:
        return sha256_digest(canonical_json(self.to_dict()))


@dataclass(frozen=True)
class LoadOutcome:
    checks: tuple[Check, ...]
    device_name: str
    libraries: dict[str, str]
    load_seconds: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    sample: ProbeSample | None = None
    settings: LoadSettings | None = None  # the load the checks describe (full precision after a fallback)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)


def resolve_device(requested: str) -> str:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` without a GPU is refused."""
    import torch

    if requested not in DEVICES:
        raise InvalidInput(f"unknown device {requested!r}; use {', '.join(DEVICES)}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
    return requested


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "safetensors"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return str(torch.cuda.get_device_name(torch.cuda.current_device()))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _error(exc: BaseException) -> str:
    """``RuntimeError: first line of the message`` (cut at a few hundred characters)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _sample(ids: tuple[int, ...], out: torch.Tensor) -> ProbeSample:
    length = out.shape[1]
    positions = (0, length // 2, length - 1)
    values = tuple(tuple(round(float(x), 6) for x in out[0, p, :SAMPLE_COLUMNS].tolist()) for p in positions)
    return ProbeSample(token_ids=ids, positions=positions, values=values, mean=float(out.mean()), std=float(out.std()))


def compare_to_reference(sample: ProbeSample, reference: ProbeSample, recorded: str) -> Check:
    if (
        reference.token_ids != sample.token_ids
        or reference.positions != sample.positions
        or [len(r) for r in reference.values] != [len(r) for r in sample.values]
    ):
        return Check(
            "probe-reference", False, f"the probe reference recorded {recorded} has another probe input or shape"
        )
    ref_max = max((abs(x) for row in reference.values for x in row), default=0.0)
    diff = max(
        (
            abs(a - b)
            for ra, rb in zip(sample.values, reference.values, strict=True)
            for a, b in zip(ra, rb, strict=True)
        ),
        default=0.0,
    )
    tolerance = ATOL + RTOL * ref_max
    if diff > tolerance:
        return Check(
            "probe-reference",
            False,
            f"outputs drifted from the reference recorded {recorded}: max |difference| {diff:.3g} exceeds the "
            f"tolerance {tolerance:.3g} (ATOL {ATOL} + RTOL {RTOL} x max|ref|); the adapter, base or libraries "
            "changed behaviour",
        )
    return Check(
        "probe-reference",
        True,
        f"outputs match the reference recorded {recorded} (max |difference| {diff:.3g}, tolerance {tolerance:.3g})",
    )


def _peak_memory(device: str) -> tuple[int, str]:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss_kib) * 1024, "process_peak_rss"


def _key_check(model: Any, adapter_dir: Path) -> Check:
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open

    try:
        with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="pt") as f:
            saved = set(f.keys())
        expected = set(get_peft_model_state_dict(model).keys())
    except Exception as exc:  # peft or safetensors raising: say so rather than guess
        return Check("adapter-keys", None, f"not checked: listing the adapter's keys failed ({_error(exc)})")
    missing = sorted(expected - saved)
    unexpected = sorted(saved - expected)
    if not saved and not expected:
        return Check("adapter-keys", None, "not checked: the adapter file holds no tensors and peft saves none")
    if not missing and not unexpected:
        return Check("adapter-keys", True, f"all {len(saved)} adapter tensors were loaded and none is missing")
    details = [f"missing (left at initialisation): {k}" for k in missing[:10]]
    details += [f"unexpected (matched nothing, dropped): {k}" for k in unexpected[:10]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} adapter parameters of the model are not in the file")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors in the file match no adapter parameter and were dropped")
    return Check("adapter-keys", False, "; ".join(parts) + f"; first: {(missing or unexpected)[0]}", tuple(details))


def _load_base(base_dir: Path, plan: ProbePlan, settings: LoadSettings) -> Any:
    """The base, with the class its task calls for, quantized as ``settings`` say, on their device."""
    import torch
    import transformers

    dtype = getattr(torch, settings.compute_dtype)
    kwargs: dict[str, Any] = {"device_map": {"": settings.device}, "dtype": dtype, **plan.load_kwargs()}
    if settings.four_bit:
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type=settings.quant,
            bnb_4bit_use_double_quant=bool(settings.double_quant),
            bnb_4bit_compute_dtype=dtype,
        )
    elif settings.quant == "int8":
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]
    base = getattr(transformers, plan.model_class).from_pretrained(str(base_dir), **kwargs)
    base.eval()
    return base


@dataclass
class _Attempt:
    """One load of base + adapter and its probe; ``trouble`` says what went wrong (None: it ran cleanly), and
    ``stage`` how far it got: 0 the base did not load, 1 the adapter did not attach, 2 the probe did not run,
    3 it ran."""

    settings: LoadSettings
    checks: list[Check]
    sample: ProbeSample | None = None
    load_seconds: float | None = None
    trouble: str | None = None
    stage: int = 3


def _probe(model: Any, base: Any, plan: ProbePlan, device: str) -> tuple[list[Check], ProbeSample | None, str | None]:
    """Run the probe with the adapter on and off: finite outputs and an effect. Returns the checks, the
    sample of the adapted outputs and, when it did not run cleanly, what went wrong (as a clause)."""
    import torch

    from registry.verification.probes import probe_inputs, probe_outputs, task_inputs

    vocab = int(getattr(base.config, "vocab_size", 0) or 0)
    if vocab <= 0:
        return [Check("probe", None, "not run: the base config gives no vocab_size for the probe input")], None, None
    token_ids = probe_ids(vocab)
    inputs = probe_inputs(plan, base.config, token_ids, device)
    try:
        adapted = probe_outputs(model, {**inputs, **task_inputs(plan, device)})
        with model.disable_adapter():
            plain = probe_outputs(model, inputs)
    except Exception as exc:  # a kernel or shape error inside the model: the adapter does not run here
        failed = f"running the probe input failed: {_error(exc)}"
        return [Check("probe", False, failed)], None, f"it attached, but {failed}"
    where = ""
    extra = adapted.shape[1] - plain.shape[1]
    if extra > 0 and adapted.shape[0] == plain.shape[0] and adapted.shape[2:] == plain.shape[2:]:
        adapted = adapted[:, extra:]  # prompt learning: peft puts the virtual tokens before the input's
        where = f" on the {plain.shape[1]} real token positions (the {extra} virtual tokens peft prepends left out)"
    if adapted.shape != plain.shape:
        message = (
            f"the adapted outputs have shape {list(adapted.shape)} and the base's {list(plain.shape)}: they cannot "
            "be compared position by position"
        )
        return [Check("probe", False, message)], None, f"it attached, but {message}"
    finite = bool(torch.isfinite(adapted).all()) and bool(torch.isfinite(plain).all())
    checks = [
        Check(
            "finite-outputs",
            finite,
            "the probe's outputs are finite" if finite else "the probe's outputs contain NaN or infinity",
        )
    ]
    trouble = None if finite else "its outputs there contain NaN or infinity"
    effect = float((adapted - plain).abs().max()) if finite else 0.0
    scale = max(1.0, float(plain.abs().max())) if finite else 1.0
    if finite and effect <= _NO_EFFECT * scale:
        checks.append(Check("adapter-effect", False, "adapter has no effect on the base outputs"))
        trouble = "it attached, but it has no effect on the outputs there"
    elif finite:
        changes = f"the adapter changes the outputs{where} (max |difference| {effect:.3g})"
        checks.append(Check("adapter-effect", True, changes))
    return checks, _sample(token_ids, adapted) if finite else None, trouble


def _attempt(base_dir: Path, adapter_dir: Path, plan: ProbePlan, settings: LoadSettings) -> _Attempt:
    """Load the base as ``settings`` say, attach the adapter, run the probe; whatever the libraries raise
    becomes a failed check."""
    import torch
    from peft import PeftModel

    base = model = None
    start = time.perf_counter()
    try:
        torch.manual_seed(0)  # a head the base lacks and the adapter does not save starts the same every time
        try:
            base = _load_base(base_dir, plan, settings)
        except Exception as exc:
            why = f"transformers could not load the base {settings.describe()} as {plan.model_class}: {_error(exc)}"
            return _Attempt(settings, [Check("base-load", False, why)], trouble=_error(exc), stage=0)
        try:
            model = PeftModel.from_pretrained(base, str(adapter_dir), **plan.peft_kwargs(adapter_dir))
        except Exception as exc:  # peft/torch raise many kinds (size mismatch, KeyError, ValueError)
            failed = Check("adapter-load", False, f"peft could not attach the adapter to the base: {exc}")
            seconds = time.perf_counter() - start
            return _Attempt(settings, [failed], None, seconds, f"attaching it failed ({_error(exc)})", stage=1)
        load_seconds = time.perf_counter() - start
        model.eval()
        loaded = (
            f"base loaded {settings.describe()} on {settings.device} and adapter attached in {load_seconds:.2f} s; "
            f"{plan.describe()}"
        )
        keys = _key_check(model, adapter_dir)
        probe, sample, trouble = _probe(model, base, plan, settings.device)
        ran = not any(c.name == "probe" and c.passed is False for c in probe)
        if keys.passed is False and trouble is None:
            trouble = f"it attached, but {keys.message}"
        checks = [Check("adapter-load", True, loaded), keys, *probe]
        return _Attempt(settings, checks, sample, load_seconds, trouble, stage=3 if ran else 2)
    finally:
        del model, base
        gc.collect()
        if settings.device == "cuda":
            torch.cuda.empty_cache()


def _quantization_refused(first: _Attempt, full: _Attempt, peft_type: str, peft_version: str) -> Check:
    """The one sentence saying that the quantized load could not run this adapter and the full-precision one could."""
    s = first.settings
    if any(c.name == "base-load" for c in first.checks):
        what = f"the base could not be loaded {s.describe()} ({first.trouble})"
    else:
        what = f"peft {peft_version} cannot run this {peft_type} adapter on {s.layers} layers: {first.trouble}"
    where = ", where it runs" if full.trouble is None else ""
    return Check(
        "quantized-load",
        None,
        f"{what}; the checks below loaded the base {full.settings.describe()} instead{where}",
        tuple(f"{s.layers} load: {c.name}: {c.message}" for c in first.checks if c.passed is False),
    )


def _with_detail(attempt: _Attempt, detail: str) -> list[Check]:
    """The attempt's checks, ``detail`` added to its first failed check."""
    checks = list(attempt.checks)
    for i, c in enumerate(checks):
        if c.passed is False:
            checks[i] = replace(c, details=(*c.details, detail))
            break
    return checks


def run_load_check(
    base_dir: Path,
    adapter_dir: Path,
    settings: LoadSettings,
    reference: Callable[[str], tuple[ProbeSample, str] | None],
) -> LoadOutcome:
    """Load base + adapter as ``settings`` say and run the probe (falling back to full precision when the
    quantization is what fails, see the module). ``reference(key)`` gives the probe reference recorded for
    the load settings' key, as (sample, 'at TIME by USER'), or None; it is asked for the settings the
    reported checks ran with.

    The libraries' progress bars, warnings and log lines (bitsandbytes' CPU backend, for one, logs
    a warning whenever it cannot fetch an optional kernel from the Hub; its own fallback is what
    runs) are kept out of the caller's output, unless ADAPTERS_DEBUG is set (registry._quiet).
    """
    with quiet_libraries(transformers=True):
        return _load_and_probe(base_dir, adapter_dir, settings, reference)


def _load_and_probe(
    base_dir: Path,
    adapter_dir: Path,
    settings: LoadSettings,
    reference: Callable[[str], tuple[ProbeSample, str] | None],
) -> LoadOutcome:
    import torch

    device = settings.device
    libraries = library_versions()
    device_name = _device_name(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    plan = plan_probe(adapter_dir, base_dir)
    if plan.refusal is not None:  # peft cannot load it at all (it might not even return): it is not tried
        refused = Check("adapter-load", False, f"peft {libraries['peft']} cannot load the adapter: {plan.refusal}")
        reference(settings.key)  # the report names the reference of its setting, as every load check's does
        return LoadOutcome((refused,), device_name, libraries, settings=settings)
    attempt = _attempt(base_dir, adapter_dir, plan, settings)
    checks = attempt.checks
    if settings.quantized and attempt.trouble is not None:
        full = _attempt(base_dir, adapter_dir, plan, settings.full_precision(base_dtype(base_dir)))
        # the quantization is to blame when the full-precision load runs cleanly, or gets further (its own
        # failures are then the adapter's, reported after the sentence saying why the quantized load stopped)
        if full.trouble is None or full.stage > attempt.stage:
            refused = _quantization_refused(attempt, full, plan.peft_type, libraries["peft"])
            attempt, checks = full, [refused, *full.checks]
        else:
            failed = next((c for c in full.checks if c.passed is False), None)
            also = f"{failed.name}: {failed.message}" if failed is not None else full.trouble
            checks = _with_detail(attempt, f"in full precision ({full.settings.compute_dtype}) too: {also}")
    recorded = reference(attempt.settings.key)
    if attempt.sample is not None and recorded is not None:
        checks.append(compare_to_reference(attempt.sample, recorded[0], recorded[1]))
    peak, kind = _peak_memory(device)
    return LoadOutcome(
        tuple(checks), device_name, libraries, attempt.load_seconds, peak, kind, attempt.sample, attempt.settings
    )
