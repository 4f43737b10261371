"""The heavy libraries' chatter (progress bars, FutureWarnings, log lines) is kept out of the
caller's output while the registry uses them, shown with ADAPTERS_DEBUG=1, and the caller's own
settings are what they were afterwards."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from registry import Registry


def _transformers_state() -> tuple[int, bool]:
    from transformers.utils import logging as hf_logging

    return hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()


@pytest.fixture
def bars_on() -> object:
    """transformers' progress bars on, as in a program that has not turned them off (tests run with
    HF_HUB_DISABLE_PROGRESS_BARS=1, so huggingface_hub's stay off: enabling them warns, ignored)."""
    from transformers.utils import logging as hf_logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_logging.enable_progress_bar()
    yield
    hf_logging.disable_progress_bar()


def test_inside_the_block_warnings_logs_and_bars_are_quiet_and_put_back_after(bars_on, caplog) -> None:
    from registry import quiet_libraries

    filters = list(warnings.filters)
    levels = {name: logging.getLogger(name).level for name in ("bitsandbytes", "transformers", "peft")}
    before = _transformers_state()
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        with quiet_libraries(transformers=True):
            warnings.warn_explicit("`x` is deprecated", FutureWarning, "modeling_utils.py", 1, "transformers.x")
            logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
            assert _transformers_state()[1] is False
        assert shown == [] and "gemm" not in caplog.text
        warnings.warn_explicit("after the block", FutureWarning, "modeling_utils.py", 2, "transformers.x")
        assert [str(w.message) for w in shown] == ["after the block"]
    assert warnings.filters == filters
    assert {name: logging.getLogger(name).level for name in levels} == levels
    assert _transformers_state() == before and before[1] is True


def test_with_adapters_debug_nothing_is_hidden(bars_on, caplog, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry import quiet_libraries

    monkeypatch.setenv("ADAPTERS_DEBUG", "1")
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        with quiet_libraries(transformers=True):
            warnings.warn_explicit("`x` is deprecated", FutureWarning, "modeling_utils.py", 1, "transformers.x")
            logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
            assert _transformers_state()[1] is True
    assert [w.category for w in shown] == [FutureWarning] and "gemm" in caplog.text


def test_verify_and_merge_leave_the_callers_settings_as_they_were(
    sqlite_reg: Registry, llama, tmp_path: Path, bars_on
) -> None:
    bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")
    bnb.setLevel(logging.NOTSET)
    filters = list(warnings.filters)
    before = _transformers_state()
    ref = sqlite_reg.push(llama.adapter, name="a", base=str(llama.base), quantization="nf4").ref
    assert sqlite_reg.verify(ref, mode="load", device="cpu").passed
    sqlite_reg.merge(ref, out=tmp_path / "merged", base_precision="nf4-dequantized")
    assert _transformers_state() == before  # the caller's own loads still show their progress bars
    assert bnb.level == logging.NOTSET and warnings.filters == filters
