"""What every PEFT method module provides, and the pieces they share.

A method module knows, for one PEFT type (or a family of them):

* which tensors of a saved adapter are its own, and the role of each (``split``);
* the shape each role must have against the base module it changes (``check``), recorded on a
  :class:`Shapes` checker shared by every tensor of one adapter;
* whether it can be folded into the base weights (``merge_refusal`` says why not), and if so which
  operation each of its tensors adds to a :class:`MergePlan` (``plan``).

Static verification (:mod:`registry.domain.compat`) and the merge (:mod:`registry.merge`) read
methods only through this contract, so adding a method is one new module (plus, if it merges with a
new kind of operation, its kernel in :mod:`registry.merge.kernels`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.domain.adapterdir import PeftFacts, TensorInfo, pattern_value

__all__ = [
    "MAX_LISTED",
    "BiasAdd",
    "Check",
    "ColumnScale",
    "LoraUpdate",
    "MergeOp",
    "MergePlan",
    "Method",
    "PeftModule",
    "Replace",
    "Shapes",
    "find_module",
    "shape_text",
    "split_suffix",
]

MAX_LISTED = 20


@dataclass(frozen=True)
class Check:
    """The outcome of one check. ``passed`` is None when the check could not be made."""

    name: str
    passed: bool | None
    message: str
    details: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message, "details": list(self.details)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(name=d["name"], passed=d["passed"], message=d["message"], details=tuple(d.get("details") or ()))


def shape_text(s: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in s) + "]"


def split_suffix(name: str, suffixes: Sequence[str]) -> tuple[str, str] | None:
    """``(module path, suffix)`` when ``name`` ends in ``.suffix`` for one of ``suffixes``."""
    for suffix in suffixes:
        if name.endswith("." + suffix):
            return name[: -len(suffix) - 1], suffix
    return None


def find_module(path: str, modules: Mapping[str, tuple[int, ...]]) -> str | None:
    """The base module an adapter module path names, allowing for a differing model prefix
    (an adapter trained on ``LlamaForCausalLM`` names ``model.layers...``; a base saved as
    ``LlamaModel`` names ``layers...``)."""
    if path in modules:
        return path
    rest = path.partition(".")[2]
    if rest and rest in modules:
        return rest
    prefixes = {m.split(".", 1)[0] for m in modules if "." in m}
    for prefix in sorted(prefixes):
        candidate = f"{prefix}.{path}"
        if candidate in modules:
            return candidate
    return None


class Shapes:
    """Checks each adapter tensor against the base weight it modifies and collects the findings."""

    def __init__(self, facts: PeftFacts, modules: Mapping[str, tuple[int, ...]], embedding_modules: set[str]) -> None:
        self.facts = facts
        self.modules = modules
        self.embedding_modules = embedding_modules
        self.failures: list[str] = []
        self.fitted: set[str] = set()
        self.count = 0
        self.bound: dict[str, dict[str, int]] = {}  # per module: the named dimensions of its tensors
        self.unchecked: dict[str, set[str]] = {}  # per method: the roles it has no shape rule for
        self.unchecked_count = 0

    def not_checked(self, method: str, role: str) -> None:
        """A tensor whose shape no rule covers: reported as not checked, never as failed."""
        self.unchecked.setdefault(method, set()).add(role.split(".")[0])
        self.unchecked_count += 1

    def module(self, tensor: str, path: str, what: str = "module") -> tuple[str, tuple[int, ...]] | None:
        """The base module (and its weight's shape) a tensor's module path names, counting the tensor."""
        self.count += 1
        module = find_module(path, self.modules)
        if module is None:
            self.failures.append(f"{tensor}: the base has no {what} {path!r}")
            return None
        return module, self.modules[module]

    def rank(self, module: str) -> int | None:
        pattern = pattern_value(self.facts.rank_pattern, module)
        return int(pattern) if pattern is not None else self.facts.r

    def fail(self, module: str, message: str) -> None:
        self.failures.append(f"{module}: {message}")

    def features(self, w: tuple[int, ...]) -> tuple[int, int] | None:
        """(out_features, in_features) of a base weight, or None when it is not a linear map."""
        if len(w) == 4:  # Conv2d [out, in, kh, kw]
            return w[0], w[1]
        if len(w) == 2:
            return (w[1], w[0]) if self.facts.fan_in_fan_out else (w[0], w[1])
        return None

    def transposed_hint(self, got: int, w: tuple[int, ...], want_in: bool) -> str:
        """Say so when a shape would fit the transposed weight (a wrong fan_in_fan_out)."""
        if len(w) != 2 or w[0] == w[1]:
            return ""
        other = self.features((w[1], w[0]))
        if other is not None and got == (other[1] if want_in else other[0]):
            return f" (it fits the transposed weight: fan_in_fan_out is {self.facts.fan_in_fan_out} in the config)"
        return ""

    def result(self, total: int) -> Check:
        if self.failures:
            listed = tuple(self.failures[:MAX_LISTED])
            if len(self.failures) > MAX_LISTED:
                listed += (f"... and {len(self.failures) - MAX_LISTED} more",)
            return Check(
                "tensor-shapes",
                False,
                f"{len(self.failures)} of {total} adapter tensors do not fit the base; first: {self.failures[0]}",
                listed,
            )
        return Check("tensor-shapes", True, f"{self.count} adapter tensors fit {len(self.fitted)} base modules")


# -- merge plans ------------------------------------------------------------------------------------


@dataclass
class LoraUpdate:
    """``W' = W + scale * T(B @ A)`` (DoRA: rescaled by ``magnitude`` over the adapted row norms)."""

    a: str | None = None
    b: str | None = None
    magnitude: str | None = None
    base_layer: str | None = None  # a saved copy of the base weight to merge into (adapted embeddings)
    embedding: bool = False
    scale: float = 1.0


@dataclass(frozen=True)
class BiasAdd:
    """``b' = b + scale * adapter[key]``; with ``base_key``, ``b`` is the adapter's trained copy of the base
    bias (``base_layer.bias``, saved with ``bias="lora_only"``) rather than the base's."""

    key: str
    scale: float
    base_key: str | None = None


@dataclass(frozen=True)
class Replace:
    """The base tensor is replaced by ``adapter[key]`` (modules_to_save)."""

    key: str


@dataclass(frozen=True)
class ColumnScale:
    """``W' = W * T(adapter[key])`` (IA3: the vector's shape says rows or columns); on a bias, ``b * l``."""

    key: str
    bias: bool = False


@dataclass(frozen=True)
class PeftModule:
    """The module's weight (``part="weight"``) or bias as peft's own layer merges it: the layer is built
    around the base module, given the adapter tensors ``keys`` (and the plan's shared ones) and merged
    (:mod:`registry.merge.peftlayer`). ``path`` names the module as the adapter does."""

    module: str
    path: str
    keys: list[str]
    part: str


MergeOp = LoraUpdate | BiasAdd | Replace | ColumnScale | PeftModule


@dataclass
class MergePlan:
    """Which base tensor (by name) gets which operation; ``shared``: adapter tensors every module reads."""

    ops: dict[str, MergeOp] = field(default_factory=dict)
    shared: list[str] = field(default_factory=list)

    def targets(self) -> set[str]:
        return set(self.ops)


class Method(Protocol):
    """A PEFT method, as verification and merge see it (see the module documentation)."""

    @property
    def peft_types(self) -> frozenset[str]:
        """The ``peft_type`` values (upper case) this module handles."""
        ...

    def split(self, name: str) -> tuple[str, str] | None:
        """``(module path, role)`` when the tensor (named without peft's prefix) is this method's."""
        ...

    def check(
        self, shapes: Shapes, tensor: str, path: str, role: str, shape: tuple[int, ...], config: Mapping[str, Any]
    ) -> None:
        """Check one of the method's tensors against the base module it changes, recording on ``shapes``."""
        ...

    def trainable(self, role: str, dtype: str) -> bool:
        """Whether peft trains a tensor of this role (frozen copies, shared buffers and indices it does not)."""
        ...

    def merge_refusal(self, config: Mapping[str, Any], ref: str) -> str | None:
        """Why an adapter of this method cannot be folded into its base (None when it can)."""
        ...

    def plan(self, plan: MergePlan, config: Mapping[str, Any], module: str, role: str, key: str) -> None:
        """Add the operation one tensor (``key``, of base module ``module``) contributes to the merge."""
        ...

    def finish(self, plan: MergePlan, base: Mapping[str, tuple[int, ...]]) -> None:
        """Complete the plan once every tensor was added (drop partial entries, refuse incomplete ones)."""
        ...


def tensor_infos(shapes: Mapping[str, tuple[int, ...]]) -> list[TensorInfo]:
    return [TensorInfo(n, "", s) for n, s in shapes.items()]
