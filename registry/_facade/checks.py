"""Fitting a version to its base: load verification and the merge into the base."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._facade._base import FacadeBase, KeyLike, PathLike, RefLike, ref_of
from registry._io import Progress
from registry.domain.verification import VerificationReport

if TYPE_CHECKING:
    from registry.merge.results import MergeResult

__all__ = ["CheckMethods"]


class CheckMethods(FacadeBase):
    """verify and merge."""

    def verify(
        self,
        ref: RefLike,
        base: str | None = None,
        *,
        mode: str = "all",
        device: str = "auto",
        quant: str = "nf4",
        double_quant: bool = True,
        compute_dtype: str | None = None,
        allow_base_mismatch: bool = False,
        key: KeyLike | None = None,
        targets: Sequence[str] = (),
        max_lora_rank: int | None = None,
        lora_target_modules: Sequence[str] | None = None,
    ) -> VerificationReport:
        """Check that version ``ref`` fits ``base`` (default: the recorded base, if it is on this machine).

        ``mode``: ``static`` (safetensors headers only, read from the blob store by ranges: the
        weights are neither downloaded nor re-hashed), ``load`` (a real load with peft and a probe input,
        from re-hashed copies of every file, on the base quantized as ``quant`` says: ``nf4`` (default) or
        ``fp4`` 4-bit, ``int8``, or ``none``, its own dtype) or ``all``. The report is stored with the version whatever its
        outcome; ``report.passed`` says whether every check passed.

        ``targets``: serving engines (``vllm``, ``sglang``, ``lorax``, ``tgi``) whose adapter rules are checked
        too, from the config and headers, in every mode; ``max_lora_rank`` and ``lora_target_modules`` are the
        engines' start-up settings of those names (vllm and sglang). The report records each engine's profile.
        """
        from registry.domain.serving import serving_targets
        from registry.verification.service import VerifyOptions

        served = serving_targets(targets, max_lora_rank, lora_target_modules)
        options = VerifyOptions(mode, device, quant, double_quant, compute_dtype, allow_base_mismatch, targets=served)
        return self._verifier.verify(self._actor, ref_of(ref), base, options, self._signer(key))

    def record_verification(
        self,
        ref: RefLike,
        report: Mapping[str, Any],
        *,
        reference: Mapping[str, Any] | None = None,
        key: KeyLike | None = None,
    ) -> VerificationReport:
        """Record a report computed where the base model is (``adapters verify`` through the server): every
        fact of it the registry can derive is checked first (see :meth:`Verifier.record_submitted`)."""
        return self._verifier.record_submitted(self._actor, ref_of(ref), report, reference, self._signer(key))

    def probe_reference(self, ref: RefLike, base_fingerprint: str, settings: str) -> dict[str, Any] | None:
        """The probe reference a load check of ``ref`` on this base and load setting compares with, if any."""
        from registry.catalog.resolve import resolve

        with self._records.read() as records:
            version = resolve(records, ref_of(ref), self._identity.access(records, self._actor))
            stored = records.probe_reference(version.id, base_fingerprint, settings)
        if stored is None:
            return None
        return {"id": stored.id, "sample_json": stored.sample_json, "digest": stored.digest,
                "created_at": stored.created_at, "created_by": stored.created_by}  # fmt: skip

    def merge(
        self,
        ref: RefLike,
        *,
        out: PathLike,
        base: str | None = None,
        dtype: str | None = None,
        base_precision: str = "original",
        allow_base_mismatch: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> MergeResult:
        """Fold version ``ref`` into its base and write a model directory to ``out``.

        Streams the base shard by shard (memory about one tensor plus the adapter), keeps its
        sharding, index, config and tokenizer, and equals peft's ``merge_and_unload``. ``dtype``
        (bfloat16, float16, float32) casts the floating tensors; ``base_precision="nf4-dequantized"``
        merges into dequantize(quantize(W)) for adapters trained on a 4-bit base.
        """
        from registry.governance.release import concrete
        from registry.merge.results import MergeOptions

        options = MergeOptions(dtype, base_precision, allow_base_mismatch, force)
        pinned = concrete(self._records, self._identity, self._actor, ref_of(ref))
        return self._merger.merge(self._actor, pinned, base, Path(out), options, progress)
