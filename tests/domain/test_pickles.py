"""Pickles are recognised by name and by their first bytes, never by loading them."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from registry.domain.pickles import pickle_reason


def _npy(path: Path, header: str, major: int = 1) -> Path:
    text = header.encode("latin1")
    size = struct.pack("<H", len(text)) if major == 1 else struct.pack("<I", len(text))
    path.write_bytes(b"\x93NUMPY" + bytes([major, 0]) + size + text + b"\x00" * 16)
    return path


@pytest.mark.parametrize(
    "descr",
    ["'|O'", "'O'", "'<O8'", "[('a', '<f4', (2,)), ('b', [('c', '|O')])]", "('|O', (3,))"],
)
def test_object_dtypes_are_pickles(tmp_path: Path, descr: str) -> None:
    path = _npy(tmp_path / "x.npy", f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}")
    reason = pickle_reason(path, "x.npy")
    assert reason is not None and "Python objects" in reason


@pytest.mark.parametrize("descr", ["'<f4'", "'|b1'", "'<U7'", "'<M8[ns]'", "[('a', '<i8'), ('b', '<f2', (2, 2))]"])
def test_plain_dtypes_are_not(tmp_path: Path, descr: str) -> None:
    for major in (1, 2):
        path = _npy(tmp_path / "x.npy", f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}", major)
        assert pickle_reason(path, "x.npy") is None


@pytest.mark.parametrize(
    "header",
    ["{'descr': 'object', 'shape': (1,)}", "{'descr': {'names': ['a']}}", "not a dict", "{'shape': (1,)}", "[" * 5000],
)
def test_an_npy_header_that_cannot_be_told_safe_is_refused(tmp_path: Path, header: str) -> None:
    assert pickle_reason(_npy(tmp_path / "x.npy", header), "x.npy") is not None


def test_a_safetensors_file_is_not_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "a.safetensors"
    path.write_bytes(b"\x80\x04" + b"\x00" * 6 + b"{}")  # a header length of 1152 starts like a pickle
    assert pickle_reason(path, "a.safetensors") is None
