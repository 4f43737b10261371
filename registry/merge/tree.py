"""The merged directory besides its rewritten shards: the rest of the base's tree, by relative path.

A merged directory has to load with whatever loaded the base. transformers reads ``config.json``
and the tokenizer next to the weights; sentence-transformers also reads ``modules.json`` and the
module directories it names (``1_Pooling/config.json``, ``2_Dense/...``). So every file of the
base's tree is copied to the same relative path, except:

* the shards the merge rewrote;
* other weight files beside them (``pytorch_model.bin``, ``tf_model.h5``, ...): the base's
  unmerged weights in another format, which a loader preferring that format would load;
* weight files elsewhere in the tree that no ``modules.json`` names as a module's own
  (``onnx/model.onnx``, ``openvino/openvino_model.bin``): exports of the unmerged weights, for the
  same reason.

Each file left out is named in a warning. The weights of the modules a ``modules.json`` names
(``2_Dense/model.safetensors``) belong to those modules, which the merge does not touch, and are
copied. Names starting with a dot (``.gitattributes``, ``.cache``) are not copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from registry._io import atomic_write_bytes, fsync_dir, fsync_file, hash_file
from registry.domain.adapterdir import ADAPTER_CONFIG, PROVENANCE_FILE
from registry.merge.results import MergedFile
from registry.merge.shards import FLOATING, ITEMSIZE, ShardTensor, code_of, numel

__all__ = ["BaseTree", "copy_tree", "plan_tree"]

INDEX = "model.safetensors.index.json"
_WEIGHT_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx", ".onnx_data", ".tflite",
)  # fmt: skip
_TOKENIZER_FILES = re.compile(
    r"^(tokenizer(_config)?\.json|special_tokens_map\.json|added_tokens\.json|tokenizer\.model|vocab\.(json|txt)|merges\.txt|chat_template\.(json|jinja))$"
)


@dataclass(frozen=True)
class BaseTree:
    """What of the base's tree a merge copies: relative paths (POSIX), and what it leaves out."""

    root: Path
    weights: str  # the directory of the shards, relative to root ("" at the top)
    copy: tuple[str, ...]
    left_out: tuple[str, ...]

    def warnings(self) -> tuple[str, ...]:
        if not self.left_out:
            return ()
        shown = ", ".join(self.left_out[:5]) + (f" and {len(self.left_out) - 5} more" if len(self.left_out) > 5 else "")
        return (
            f"not copied from the base: {shown}: weight files that hold the base's unmerged weights in another "
            "format (or an export of them), which would load the base's behaviour, not the merged one; export "
            "the merged model again in that format if you need it",
        )


def _parent(rel: str) -> str:
    """The directory part of a relative POSIX path, "" at the top."""
    parent = PurePosixPath(rel).parent.as_posix()
    return "" if parent == "." else parent


def _module_dirs(root: Path) -> set[str]:
    """Directories (relative to ``root``) that a sentence-transformers ``modules.json`` names, besides its own."""
    out: set[str] = set()
    for listing in root.rglob("modules.json"):
        try:
            modules = json.loads(listing.read_text())
        except (OSError, ValueError):
            continue
        here = listing.parent.relative_to(root)
        for module in modules if isinstance(modules, list) else []:
            path = module.get("path") if isinstance(module, Mapping) else None
            if isinstance(path, str) and path.strip("/"):
                out.add((here / path.strip("/")).as_posix())
    return out


def _files(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath).relative_to(root)
        found.extend((here / f).as_posix() for f in sorted(filenames) if not f.startswith("."))
    return [f for f in found if (root / f).is_file()]


def plan_tree(root: Path, weights_dir: Path, rewritten: set[str]) -> BaseTree:
    """Which files of the base at ``root`` a merge copies; ``rewritten``: the names of the shards in ``weights_dir``."""
    weights = _parent((weights_dir.relative_to(root) / "x").as_posix())
    modules = _module_dirs(root)
    copy: list[str] = []
    left_out: list[str] = []
    for rel in _files(root):
        parent, name = _parent(rel), PurePosixPath(rel).name
        if parent == weights and name in rewritten:
            continue
        if not name.endswith(_WEIGHT_SUFFIXES):
            copy.append(rel)
        elif parent != weights and any(parent == m or parent.startswith(m + "/") for m in modules):
            copy.append(rel)  # a sentence-transformers module's own weights (2_Dense/model.safetensors)
        else:
            left_out.append(rel)
    return BaseTree(root, weights, tuple(copy), tuple(left_out))


def _rewritten_json(
    src: Path,
    name: str,
    headers: Mapping[Path, tuple[list[ShardTensor], dict[str, str]]],
    dtype: str | None,
) -> bytes | None:
    """The index (with the new total size) or the config (with the new dtype) of the shards; None to copy as is."""
    if name == INDEX:
        index = json.loads(src.read_text())
        if dtype:
            out_code = code_of(dtype)
            total = sum(
                ITEMSIZE[out_code if t.dtype in FLOATING else t.dtype] * numel(t.shape)
                for entries, _ in headers.values() for t in entries
            )  # fmt: skip
            index.setdefault("metadata", {})["total_size"] = total
        return json.dumps(index, indent=2).encode("utf-8") + b"\n"
    if name == "config.json" and dtype:
        config: dict[str, Any] = json.loads(src.read_text())
        for key in ("torch_dtype", "dtype"):
            if key in config or key == "torch_dtype":
                config[key] = dtype
        return json.dumps(config, indent=2).encode("utf-8") + b"\n"
    return None


def _copy(src: Path, dest: Path, rel: str) -> MergedFile:
    shutil.copyfile(src, dest)
    fsync_file(dest)
    return MergedFile(rel, hash_file(dest)[0], dest.stat().st_size)


def copy_tree(
    tree: BaseTree,
    adapter_dir: Path,
    tmp: Path,
    headers: Mapping[Path, tuple[list[ShardTensor], dict[str, str]]],
    dtype: str | None,
) -> list[MergedFile]:
    """Copy the planned files into ``tmp`` (config and index of the shards updated for ``dtype``); tokenizer
    files the adapter carries replace the base's beside the shards (a resized vocabulary)."""
    out: dict[str, MergedFile] = {}
    made: set[Path] = set()
    for rel in tree.copy:
        dest = tmp / rel
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        parent, name = _parent(rel), PurePosixPath(rel).name
        data = _rewritten_json(tree.root / rel, name, headers, dtype) if parent == tree.weights else None
        if data is None:
            out[rel] = _copy(tree.root / rel, dest, rel)
        else:
            atomic_write_bytes(dest, data)
            out[rel] = MergedFile(rel, hash_file(dest)[0], len(data))
    for src in sorted(adapter_dir.iterdir()):
        if _TOKENIZER_FILES.match(src.name) and src.name not in (ADAPTER_CONFIG, PROVENANCE_FILE):
            rel = (PurePosixPath(tree.weights) / src.name).as_posix() if tree.weights else src.name
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            out[rel] = _copy(src, tmp / rel, rel)
    for directory in sorted(made, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(directory)  # the deepest first; the caller syncs tmp itself
    return list(out.values())
