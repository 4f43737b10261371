"""Library chatter kept off people's terminals while the heavy libraries work.

transformers draws a progress bar on every model load ("Loading weights: 100%|...") and on every
save, and transformers, peft, torch and bitsandbytes emit FutureWarnings, deprecation notices and
log lines ("Failed to load CPU gemm_4bit_forward ...") about their own internals. None of it is
about the adapter being checked, and the registry reports what it found in its results. So the
load check, the merge and the CLI's demo run those libraries inside :func:`quiet_libraries`.

It is a context manager, and it puts back everything it changed when it exits: the warning
filters, the libraries' logger levels, transformers' verbosity and its and huggingface_hub's
progress-bar switches. A program that imports the registry keeps its own settings.

With ``ADAPTERS_DEBUG=1`` it changes nothing, so the libraries' warnings and bars show.

Inside the block every Python warning is ignored (the block holds only calls into those
libraries; the registry itself never warns, it returns its warnings in its results).
``warnings.catch_warnings`` is process-wide: like the libraries' own switches, this is not
meant for two threads loading models at once.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from registry.settings import debug_enabled

__all__ = ["LIBRARY_LOGGERS", "quiet_libraries"]

#: The loggers of the heavy libraries (their children inherit the level).
LIBRARY_LOGGERS = ("transformers", "peft", "bitsandbytes", "accelerate", "huggingface_hub", "torch", "safetensors")


@contextmanager
def quiet_libraries(*, transformers: bool = False) -> Iterator[None]:
    """Silence the heavy libraries' warnings, logs and progress bars for the block.

    ``transformers=True`` when the block loads or saves models with transformers: it also turns off
    transformers' progress bars and sets its verbosity to errors (importing ``transformers.utils``
    first, so its own logging setup cannot undo that half-way through the block).
    """
    if debug_enabled():
        yield
        return
    with ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        if transformers:  # first: transformers sets up its logger once, on first use
            stack.callback(_transformers_quiet())
        stack.callback(_set_levels, _set_levels(dict.fromkeys(LIBRARY_LOGGERS, logging.ERROR)))
        yield


def _set_levels(levels: dict[str, int]) -> dict[str, int]:
    """Set the loggers' levels; returns the levels they had."""
    before = {}
    for name, level in levels.items():
        logger = logging.getLogger(name)
        before[name] = logger.level
        logger.setLevel(level)
    return before


def _transformers_quiet() -> Callable[[], None]:
    """Turn off transformers' (and huggingface_hub's) progress bars and lower its verbosity; returns
    the function that puts them back."""
    from huggingface_hub.utils.tqdm import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hub_bars_off = are_progress_bars_disabled()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    def restore() -> None:  # runs while warnings are still ignored (enable_progress_bars may warn)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        if hub_bars_off:
            disable_progress_bars()
        else:
            enable_progress_bars()
        hf_logging.set_verbosity(verbosity)

    return restore
