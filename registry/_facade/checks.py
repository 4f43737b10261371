"""Fitting a version to its base: load verification and the merge into the base."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
    ) -> VerificationReport:
        """Check that version ``ref`` fits ``base`` (default: the recorded base, if it is on this machine).

        ``mode``: ``static`` (safetensors headers only, read from the blob store by ranges: the
        weights are neither downloaded nor re-hashed), ``load`` (a real load on a 4-bit base with
        peft and a probe input, from re-hashed copies of every file) or ``all``. The report is stored with the version whatever its
        outcome; ``report.passed`` says whether every check passed.
        """
        from registry.verification.service import VerifyOptions

        options = VerifyOptions(mode, device, quant, double_quant, compute_dtype, allow_base_mismatch)
        return self._verifier.verify(self._actor, ref_of(ref), base, options, self._signer(key))

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
