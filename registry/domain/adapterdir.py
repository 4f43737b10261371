"""What an adapter directory contains: its files, its PEFT config and its tensors.

Everything here is read, never asked for: the facts come from ``adapter_config.json``
and from the safetensors headers (no tensor data is loaded). Whatever makes a
directory unsafe or unusable is refused with :class:`~registry.errors.InvalidAdapter`
before a single byte is stored.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.domain.adapterconfig import read_config
from registry.domain.pickles import PICKLE_SUFFIXES, pickle_reason
from registry.errors import InvalidAdapter

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "PICKLE_SUFFIXES",
    "PROVENANCE_FILE",
    "AdapterContents",
    "AdapterSource",
    "PeftFacts",
    "SourceFile",
    "TensorInfo",
    "adapter_contents",
    "declared_tensors",
    "pattern_value",
    "read_adapter_dir",
    "read_safetensors_header",
    "strip_peft_prefix",
    "target_matches",
    "target_warnings",
]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Written by ``pull`` next to the adapter; never part of a version's files.
PROVENANCE_FILE = "adapters-provenance.json"
_SKIPPED_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})
#: The prefix peft puts before every module path in a saved adapter.
PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class SourceFile:
    """One regular file of an adapter directory."""

    path: str  # relative, with '/' separators
    abspath: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as its safetensors header describes it."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class PeftFacts:
    """The adapter's facts, from its config and its tensors' headers."""

    type: str
    task_type: str | None
    r: int | None
    lora_alpha: float | None
    use_rslora: bool
    use_dora: bool
    target_modules: list[str] | str | None
    modules_to_save: list[str] | None
    rank_pattern: dict[str, int]
    alpha_pattern: dict[str, float]
    fan_in_fan_out: bool
    peft_version: str | None
    base_model_name_or_path: str | None
    tensors: int
    parameters: int  # elements of every tensor in the weights file
    dtypes: dict[str, int]
    #: the parameters peft trains (its ``get_nb_trainable_parameters``): without frozen copies and buffers
    #: saved beside them (VeRA's shared projections, an adapted embedding's base copy, indices); None in
    #: versions pushed before it was recorded
    trainable_parameters: int | None = None

    @property
    def max_rank(self) -> int | None:
        """The largest rank any module uses (``r`` or a ``rank_pattern`` entry)."""
        ranks = [v for v in self.rank_pattern.values() if isinstance(v, int)]
        if self.r is not None:
            ranks.append(self.r)
        return max(ranks) if ranks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "task_type": self.task_type,
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "use_rslora": self.use_rslora,
            "use_dora": self.use_dora,
            "target_modules": self.target_modules,
            "modules_to_save": self.modules_to_save,
            "rank_pattern": self.rank_pattern,
            "alpha_pattern": self.alpha_pattern,
            "fan_in_fan_out": self.fan_in_fan_out,
            "peft_version": self.peft_version,
            "base_model_name_or_path": self.base_model_name_or_path,
            "tensors": self.tensors,
            "parameters": self.parameters,
            "dtypes": self.dtypes,
            # absent, not null, in versions pushed before it was recorded: their manifests stay byte-identical
            **({"trainable_parameters": self.trainable_parameters} if self.trainable_parameters is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PeftFacts:
        fields: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)


@dataclass(frozen=True)
class AdapterContents:
    """What the checks of an adapter read: its checked config, its facts and its weights' tensors
    (from a directory, or from a stored version's blobs)."""

    config: dict[str, Any]
    facts: PeftFacts
    tensors: tuple[TensorInfo, ...]


def adapter_contents(config: Mapping[str, Any], tensors: Sequence[TensorInfo]) -> AdapterContents:
    """The contents of an adapter whose config and ``adapter_model.safetensors`` header were read and checked."""
    return AdapterContents(config=dict(config), facts=_facts(config, tensors), tensors=tuple(tensors))


@dataclass(frozen=True)
class AdapterSource:
    """A readable, safe adapter directory, ready to be stored."""

    root: Path
    files: tuple[SourceFile, ...]
    config: dict[str, Any]
    facts: PeftFacts
    tensors: tuple[TensorInfo, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def contents(self) -> AdapterContents:
        return AdapterContents(config=self.config, facts=self.facts, tensors=self.tensors)


def read_adapter_dir(path: str | os.PathLike[str]) -> AdapterSource:
    """Read and validate a PEFT adapter directory.

    Refuses (with :class:`InvalidAdapter`): a missing directory, a missing or invalid
    ``adapter_config.json``, missing ``adapter_model.safetensors``, any pickle-based file,
    a malformed or truncated safetensors file, a symlink leaving the directory, a special
    file, and a config whose target modules match none of the adapter's tensors.
    """
    root = Path(path)
    if not root.exists():
        raise InvalidAdapter(
            f"adapter directory {root} does not exist; give the directory peft's save_pretrained wrote", str(root)
        )
    if not root.is_dir():
        raise InvalidAdapter(f"{root} is not a directory; give the directory peft's save_pretrained wrote", str(root))
    real_root = root.resolve()
    files = tuple(sorted(_walk(real_root, real_root, root), key=lambda f: f.path))
    names = {f.path for f in files}

    if ADAPTER_CONFIG not in names:
        raise InvalidAdapter(
            f"{root} has no {ADAPTER_CONFIG}; it is not a PEFT adapter directory "
            "(save the adapter with peft's model.save_pretrained(DIR))",
            str(root / ADAPTER_CONFIG),
        )
    config = read_config(real_root / ADAPTER_CONFIG, root / ADAPTER_CONFIG)
    if ADAPTER_WEIGHTS not in names:
        raise InvalidAdapter(
            f"{root} has no {ADAPTER_WEIGHTS}; save the adapter with peft's "
            "model.save_pretrained(DIR) (safetensors is its default format)",
            str(root / ADAPTER_WEIGHTS),
        )
    tensors: tuple[TensorInfo, ...] = ()
    for f in files:
        if f.path.endswith(".safetensors"):
            header = read_safetensors_header(f.abspath, display=str(root / f.path))
            if f.path == ADAPTER_WEIGHTS:
                tensors = header
    if not tensors:
        raise InvalidAdapter(
            f"{root / ADAPTER_WEIGHTS} holds no tensors; re-save the trained adapter", str(root / ADAPTER_WEIGHTS)
        )
    facts = _facts(config, tensors)
    warnings = target_warnings(facts, tensors, root)
    return AdapterSource(root=real_root, files=files, config=config, facts=facts, tensors=tensors, warnings=warnings)


#: The pickles AdapterHub's ``save_adapter`` writes by default (weights, and a prediction head's).
_ADAPTERHUB_PICKLES = frozenset({"pytorch_adapter.bin", "pytorch_model_head.bin"})


def _walk(directory: Path, real_root: Path, shown_root: Path) -> Iterator[SourceFile]:
    with os.scandir(directory) as entries:
        for entry in entries:
            full = Path(entry.path)
            rel = full.relative_to(real_root).as_posix()
            shown = shown_root / rel
            if entry.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidAdapter(
                        f"{shown} is a symlink to {target}, outside {shown_root}; the registry only stores "
                        "files inside the adapter directory: copy the file in or remove the link",
                        str(shown),
                    )
                if target.is_dir():
                    continue  # its files are listed where they really are
                st = target.stat()
                source = target
            else:
                st = entry.stat(follow_symlinks=False)
                source = full
            if stat.S_ISDIR(st.st_mode):
                if entry.name not in _SKIPPED_DIRS:
                    yield from _walk(full, real_root, shown_root)
                continue
            if not stat.S_ISREG(st.st_mode):
                raise InvalidAdapter(
                    f"{shown} is not a regular file (a pipe, socket or device); remove it from the directory",
                    str(shown),
                )
            if rel == PROVENANCE_FILE:
                continue  # written by `adapters pull`; it describes a pull, not the adapter
            try:
                reason = pickle_reason(source, entry.name)
            except OSError as exc:
                raise InvalidAdapter(
                    f"cannot read {shown}: {exc.strerror or exc}; make it readable or remove it", str(shown)
                ) from None
            if reason is not None and entry.name in _ADAPTERHUB_PICKLES:
                raise InvalidAdapter(
                    f"{shown} is {reason}, the `adapters` library's (AdapterHub's) default save; the registry never "
                    "stores or loads pickles because unpickling can run arbitrary code. Save it as safetensors "
                    "instead: model.save_adapter(DIR, NAME, use_safetensors=True), and remove the pickle",
                    str(shown),
                )
            if reason is not None:
                raise InvalidAdapter(
                    f"{shown} is {reason}; the registry never stores or loads pickles "
                    "because unpickling can run arbitrary code. Convert weights to safetensors with a trusted "
                    "tool (peft: model.save_pretrained(DIR, safe_serialization=True); torch: "
                    "safetensors.torch.save_file) and remove the pickle file from the directory",
                    str(shown),
                )
            yield SourceFile(path=rel, abspath=source, size=st.st_size, mtime_ns=st.st_mtime_ns)


def read_safetensors_header(path: Path, display: str | None = None) -> tuple[TensorInfo, ...]:
    """The tensors a safetensors file declares, validated by safetensors itself (no data read)."""
    from safetensors import SafetensorError

    shown = display or str(path)
    try:
        return declared_tensors(path)
    except SafetensorError as exc:
        raise InvalidAdapter(
            f"{shown} is not a valid safetensors file ({exc}); it may be truncated or corrupted: "
            "copy it again or re-save the adapter",
            shown,
        ) from None
    except OSError as exc:
        raise InvalidAdapter(f"cannot read {shown}: {exc.strerror or exc}", shown) from None


def declared_tensors(path: Path) -> tuple[TensorInfo, ...]:
    """The tensors a safetensors file declares, sorted by name, as ``safe_open`` reads and checks its
    header (offsets contiguous and covering the file exactly); no tensor data is read. Raises
    safetensors' ``SafetensorError`` for a file it refuses, :class:`OSError` for one it cannot read."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        infos = []
        for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
            sl = f.get_slice(key)
            infos.append(TensorInfo(name=key, dtype=str(sl.get_dtype()), shape=tuple(int(d) for d in sl.get_shape())))
    return tuple(sorted(infos, key=lambda t: t.name))


def _as_str_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set)):
        return sorted(str(v) for v in value)
    return None


def _facts(config: Mapping[str, Any], tensors: Sequence[TensorInfo]) -> PeftFacts:
    targets = config.get("target_modules")
    target_modules = targets if isinstance(targets, str) else _as_str_list(targets)  # a str is a regex
    alpha = config.get("lora_alpha", config.get("alpha"))
    dtypes: dict[str, int] = {}
    for t in tensors:
        dtypes[t.dtype] = dtypes.get(t.dtype, 0) + 1
    return PeftFacts(
        type=str(config["peft_type"]).upper(),
        task_type=config.get("task_type"),
        r=config["r"] if isinstance(config.get("r"), int) else None,
        lora_alpha=alpha if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else None,
        use_rslora=bool(config.get("use_rslora", False)),
        use_dora=bool(config.get("use_dora", False)),
        target_modules=target_modules,
        modules_to_save=_as_str_list(config.get("modules_to_save")),
        rank_pattern=dict(config.get("rank_pattern") or {}),
        alpha_pattern=dict(config.get("alpha_pattern") or {}),
        fan_in_fan_out=bool(config.get("fan_in_fan_out", False)),
        peft_version=config.get("peft_version"),
        base_model_name_or_path=config.get("base_model_name_or_path"),
        tensors=len(tensors),
        parameters=sum(t.numel for t in tensors),
        dtypes=dict(sorted(dtypes.items())),
        trainable_parameters=_trainable(str(config["peft_type"]).upper(), tensors),
    )


def _trainable(peft_type: str, tensors: Sequence[TensorInfo]) -> int:
    """The parameters peft counts as trainable: each tensor by its method's role (frozen copies, shared
    buffers and integer indices are not), a modules_to_save copy or unknown tensor counted as trainable."""
    from registry.domain.methods import method_for

    method = method_for(peft_type)
    total = 0
    for t in tensors:
        split = method.split(strip_peft_prefix(t.name)) if method is not None else None
        if split is not None and method is not None:
            total += t.numel if method.trainable(split[1], t.dtype) else 0
        elif not t.dtype.startswith(("I", "U", "BOOL")):
            total += t.numel
    return total


def strip_peft_prefix(tensor_name: str) -> str:
    """A saved adapter tensor's name as the base model names it (without ``base_model.model.``)."""
    return tensor_name[len(PEFT_PREFIX) :] if tensor_name.startswith(PEFT_PREFIX) else tensor_name


def pattern_value(patterns: Mapping[str, Any], module: str, default: Any = None) -> Any:
    """peft's ``get_pattern_key`` for ``rank_pattern``/``alpha_pattern``: the value of the first key
    that, as a regular expression, matches the end of the module name (after a dot), else ``default``."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _module_paths(tensor_name: str) -> Iterator[str]:
    """Every dotted prefix of a tensor's module path, without peft's wrapper prefix."""
    name = strip_peft_prefix(tensor_name)
    parts = name.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def target_matches(target: str, module: str, *, regex: bool = False) -> bool:
    """peft's rule: a listed target matches a module named exactly so or ending in ``.target``;
    a string ``target_modules`` is a regular expression that must match the whole module name."""
    if regex:
        return re.fullmatch(target, module) is not None
    return module == target or module.endswith("." + target)


def targets_are_regex(facts: PeftFacts) -> bool:
    """Whether ``target_modules`` is a regular expression: a string is, as peft reads it, except for the
    adaption prompt, whose ``target_modules`` names the attention module (peft matches it as a suffix)."""
    return isinstance(facts.target_modules, str) and facts.type != "ADAPTION_PROMPT"


def target_warnings(facts: PeftFacts, tensors: Sequence[TensorInfo], root: Path) -> tuple[str, ...]:
    """Warnings for listed target modules that match no tensor; :class:`InvalidAdapter` when none matches
    (``root`` names the adapter in the message)."""
    targets = facts.target_modules
    if targets is None or targets == "all-linear" or not targets:
        return ()
    regex = targets_are_regex(facts)
    wanted = [targets] if isinstance(targets, str) else list(targets)
    if not any(t.name.startswith(PEFT_PREFIX) for t in tensors):
        return ()  # only tensors shared by every module (UniLoRA's one vector): none names a module
    modules = {m for t in tensors for m in _module_paths(t.name)}
    matched = {t for t in wanted if any(target_matches(t, m, regex=regex) for m in modules)}
    if not matched:
        raise InvalidAdapter(
            f"{root / ADAPTER_CONFIG} targets {wanted}, but none of the {len(tensors)} tensors in "
            f"{ADAPTER_WEIGHTS} belongs to such a module (first tensor: {tensors[0].name}); the config and the "
            "weights do not belong together: re-save the adapter with peft's save_pretrained",
            str(root / ADAPTER_CONFIG),
        )
    missing = [t for t in wanted if t not in matched]
    if missing:
        return (f"target modules {missing} listed in {ADAPTER_CONFIG} match no tensor in {ADAPTER_WEIGHTS}",)
    return ()
