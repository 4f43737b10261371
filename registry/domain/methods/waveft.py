"""WaveFT: ``n_frequency`` learned coefficients of the update's wavelet transform.

``waveft_spectrum`` is ``[n_frequency]`` (``n_frequency_pattern`` per module; peft's ``waveft/layer.py``).
peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, from_config

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"WAVEFT"}),
    prefixes=("waveft_",),
    rules={"waveft_spectrum": (from_config("n_frequency", "n_frequency_pattern"),)},
)
