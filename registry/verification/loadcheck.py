"""The load check: really run the adapter on a 4-bit base.

The base is loaded with transformers in 4-bit through bitsandbytes (NF4 or FP4, on CUDA
or on the CPU, where bitsandbytes' CPU backend runs NF4), the adapter is attached with
peft, and a fixed probe input is run with the adapter enabled and disabled:

* ``adapter-load``: peft attached the adapter without error;
* ``adapter-keys``: every tensor in the adapter file was loaded into the model and every
  adapter parameter of the model came from the file (peft only warns about either);
* ``finite-outputs``: no NaN or infinity;
* ``adapter-effect``: the outputs differ from the base's (an adapter that changes nothing fails);
* ``probe-reference``: outputs match the reference recorded by the first passing load with
  the same base fingerprint, quantization settings and device type, within
  ``|out - ref| <= ATOL + RTOL * max|ref|``.

torch, transformers, peft and bitsandbytes are imported here only, inside functions.
"""

from __future__ import annotations

import gc
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._quiet import quiet_libraries
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.compat import Check
from registry.errors import InvalidInput
from registry.types import DEVICES

if TYPE_CHECKING:
    import torch

__all__ = ["ATOL", "RTOL", "LoadOutcome", "LoadSettings", "ProbeSample", "run_load_check"]

#: Drift tolerance against a recorded probe reference: |out - ref| <= ATOL + RTOL * max|ref|.
ATOL = 1e-3
RTOL = 1e-2
PROBE_LENGTH = 16
SAMPLE_COLUMNS = 32
_NO_EFFECT = 1e-6


@dataclass(frozen=True)
class LoadSettings:
    """How the base is loaded for the load check."""

    device: str  # "cpu" or "cuda"
    quant: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "float32"

    @property
    def key(self) -> str:
        """Probe references are comparable only between loads with equal keys."""
        return f"{self.quant}/dq={int(self.double_quant)}/{self.compute_dtype}/{self.device}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.quant,
            "double_quant": self.double_quant,
            "compute_dtype": self.compute_dtype,
            "device_type": self.device,
        }


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


def _model_class(base_dir: Path) -> Any:
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(base_dir))
    for arch in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, arch, None)
        if cls is not None:
            return cls
    return transformers.AutoModelForCausalLM if getattr(config, "is_decoder", False) else transformers.AutoModel


def _probe_ids(vocab_size: int) -> tuple[int, ...]:
    """Fixed token ids spread over the vocabulary (deterministic, never special ids 0-2 only)."""
    return tuple((3 + i * 7919) % vocab_size for i in range(PROBE_LENGTH))


def _outputs(model: Any, ids: torch.Tensor) -> torch.Tensor:
    import torch

    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    tensor = getattr(out, "logits", None)
    if tensor is None:
        tensor = out.last_hidden_state
    result: torch.Tensor = tensor.detach().float().cpu()
    return result


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

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="pt") as f:
        saved = set(f.keys())
    expected = set(get_peft_model_state_dict(model).keys())
    missing = sorted(expected - saved)
    unexpected = sorted(saved - expected)
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


def _load_base(base_dir: Path, settings: LoadSettings) -> Any:
    """The base in 4-bit through bitsandbytes, on the settings' device."""
    import torch
    from transformers import BitsAndBytesConfig

    dtype = getattr(torch, settings.compute_dtype)
    quant = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type=settings.quant,
        bnb_4bit_use_double_quant=settings.double_quant,
        bnb_4bit_compute_dtype=dtype,
    )
    base = _model_class(base_dir).from_pretrained(
        str(base_dir), quantization_config=quant, device_map={"": settings.device}, dtype=dtype
    )
    base.eval()
    return base


def _probe_checks(
    model: Any, base: Any, device: str, reference: tuple[ProbeSample, str] | None
) -> tuple[list[Check], ProbeSample | None]:
    """Run the probe with the adapter on and off: finite outputs, an effect, agreement with the reference."""
    import torch

    vocab = int(getattr(base.config, "vocab_size", 0) or 0)
    if vocab <= 0:
        return [Check("probe", None, "not run: the base config gives no vocab_size for the probe input")], None
    token_ids = _probe_ids(vocab)
    ids = torch.tensor([token_ids], device=device)
    try:
        adapted = _outputs(model, ids)
        with model.disable_adapter():
            plain = _outputs(model, ids)
    except Exception as exc:  # a kernel or shape error inside the model: the adapter does not run here
        return [Check("probe", False, f"running the probe input failed: {type(exc).__name__}: {exc}")], None
    finite = bool(torch.isfinite(adapted).all()) and bool(torch.isfinite(plain).all())
    checks = [
        Check(
            "finite-outputs",
            finite,
            "the probe's outputs are finite" if finite else "the probe's outputs contain NaN or infinity",
        )
    ]
    effect = float((adapted - plain).abs().max())
    scale = max(1.0, float(plain.abs().max()))
    if effect <= _NO_EFFECT * scale:
        checks.append(Check("adapter-effect", False, "adapter has no effect on the base outputs"))
    else:
        checks.append(Check("adapter-effect", True, f"the adapter changes the outputs (max |difference| {effect:.3g})"))
    sample = _sample(token_ids, adapted)
    if reference is not None:
        checks.append(compare_to_reference(sample, reference[0], reference[1]))
    return checks, sample


def run_load_check(
    base_dir: Path,
    adapter_dir: Path,
    settings: LoadSettings,
    reference: tuple[ProbeSample, str] | None,
) -> LoadOutcome:
    """Load base (4-bit) + adapter and run the probe. ``reference`` is (sample, 'at TIME by USER').

    The libraries' progress bars, warnings and log lines (bitsandbytes' CPU backend, for one, logs
    a warning whenever it cannot fetch an optional kernel from the Hub; its own fallback is what
    runs) are kept out of the caller's output, unless ADAPTERS_DEBUG is set (registry._quiet).
    """
    with quiet_libraries(transformers=True):
        return _load_and_probe(base_dir, adapter_dir, settings, reference)


def _load_and_probe(
    base_dir: Path, adapter_dir: Path, settings: LoadSettings, reference: tuple[ProbeSample, str] | None
) -> LoadOutcome:
    import torch
    from peft import PeftModel

    device = settings.device
    libraries = library_versions()
    device_name = _device_name(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    base = _load_base(base_dir, settings)
    try:
        model = PeftModel.from_pretrained(base, str(adapter_dir))
    except Exception as exc:  # peft/torch raise many kinds (size mismatch, KeyError, ValueError)
        failed = Check("adapter-load", False, f"peft could not attach the adapter to the base: {exc}")
        peak, kind = _peak_memory(device)
        return LoadOutcome((failed,), device_name, libraries, time.perf_counter() - start, peak, kind)
    load_seconds = time.perf_counter() - start
    model.eval()
    loaded = f"base loaded in 4-bit ({settings.quant}) on {device} and adapter attached in {load_seconds:.2f} s"
    checks = [Check("adapter-load", True, loaded), _key_check(model, adapter_dir)]
    probe, sample = _probe_checks(model, base, device, reference)
    checks += probe
    peak, kind = _peak_memory(device)
    del model, base
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return LoadOutcome(tuple(checks), device_name, libraries, load_seconds, peak, kind, sample)
