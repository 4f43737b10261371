"""FourierFT: ``n_frequency`` learned coefficients of the weight update's 2-D Fourier spectrum.

``fourierft_spectrum`` is ``[n_frequency]`` (``n_frequency_pattern`` per module); the frequencies'
positions are drawn from ``random_loc_seed`` (peft's ``fourierft/layer.py``). peft's layer merges it."""

from __future__ import annotations

from registry.domain.methods.tuner import Tuner, from_config

__all__ = ["METHOD"]

METHOD = Tuner(
    peft_types=frozenset({"FOURIERFT"}),
    prefixes=("fourierft_",),
    rules={"fourierft_spectrum": (from_config("n_frequency", "n_frequency_pattern"),)},
)
