"""What most peft tuners share: tensors named ``<module>.<prefix>...``, shape rules, a merge by peft's layer.

A peft tuner saves, for every module it adapts, tensors named after the module and the tuner's
prefix (``...q_proj.hada_w1_a`` for LoHa, ``...q_proj.oft_R.weight`` for OFT), and some tuners
also save tensors shared by every module under ``base_model.`` (VeRA's ``vera_A``/``vera_B``).
A method module describes its tuner with one :class:`Tuner`:

* ``prefixes``: the name parts its tensors start with (peft's ``<Tuner>Model.prefix``);
* ``rules``: the shape of each role against the base weight it changes, as a tuple whose items
  are an ``int``, ``"in"``/``"out"`` (the base's in/out features, allowing for ``fan_in_fan_out``),
  ``"r"`` (the config's rank for that module, ``rank_pattern`` included), a callable of the
  :class:`Dims` (for values computed from the config), or any other name: a dimension that must be
  the same in every tensor of one module (``("k", "in")`` and ``("out", "k")`` share a rank ``k``);
  ``"W"`` alone means "the base weight's own shape". Roles without a rule are counted as not checked;
* ``constraints``: relations between those named dimensions (LoKr's factors multiply to the base's);
* ``frozen``: roles peft keeps as buffers or frozen copies (not trainable parameters);
* ``merge``: ``"peft"`` (peft's own layer merges it, see :mod:`registry.merge.peftlayer`),
  ``"replace"`` (the saved tensor replaces the base's, LN tuning), or a sentence saying why not.

A shape rule applies to a linear base weight (2-D, or a Conv2d's ``[out, in, kh, kw]`` where the
method says so); other bases are reported as not checked rather than failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.domain.adapterdir import pattern_value
from registry.domain.methods.base import MergePlan, PeftModule, Replace, Shapes, find_module, shape_text

__all__ = ["SHARED", "Dims", "Tuner", "divided", "from_config", "needs_saved", "product_is", "side_of", "triangle_side"]

#: The module path :meth:`Tuner.split` gives a tensor shared by every adapted module (``base_model.vera_A``).
SHARED = "base_model"

Dim = int | str | Callable[["Dims"], int | None]


@dataclass
class Dims:
    """What a rule's callables read: the config, the module, its base features and the names bound so far."""

    config: Mapping[str, Any]
    module: str
    out: int | None
    inp: int | None
    rank: int | None
    bound: dict[str, int]

    def pattern(self, key: str, pattern_key: str) -> Any:
        """The config's ``key`` for this module, ``pattern_key`` (e.g. ``n_frequency_pattern``) first."""
        return pattern_value(self.config.get(pattern_key) or {}, self.module, self.config.get(key))


def triangle_side(t: int) -> int | None:
    """``b`` with ``b * (b - 1) / 2 == t`` (the block size of a skew-symmetric block stored as its upper
    triangle, as OFT saves it), or None when ``t`` is no such number."""
    b = (1 + math.isqrt(1 + 8 * t)) // 2
    return b if b * (b - 1) // 2 == t else None


Constraint = Callable[[Dims], str | None]


@dataclass(frozen=True)
class Tuner:
    """One peft tuner as verification and merge see it (see the module documentation)."""

    peft_types: frozenset[str]
    prefixes: tuple[str, ...]
    rules: Mapping[str, tuple[Dim, ...]] = field(default_factory=dict)
    shared_rules: Mapping[str, tuple[Dim, ...]] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    frozen: tuple[str, ...] = ()
    merge: str = "peft"
    conv: bool = False  # the rules hold for a Conv2d base too (its [out, in, ...] features)
    parents: bool = False  # the tensors belong to a module without weights of its own (an attention block)
    refusals: Callable[[Mapping[str, Any], str], str | None] | None = None

    # -- naming --------------------------------------------------------------------------------

    def split(self, name: str) -> tuple[str, str] | None:
        """``(module path, role)``: the role starts at the first name part with the tuner's prefix;
        a tensor shared by every module (``base_model.vera_A``) has the module path :data:`SHARED`."""
        parts = name.split(".")
        for i, part in enumerate(parts):
            if i > 0 and part.startswith(self.prefixes):
                return ".".join(parts[:i]), ".".join(parts[i:])
        return None

    def trainable(self, role: str, dtype: str) -> bool:
        """Whether peft counts the tensor as a trainable parameter (indices and frozen buffers are not)."""
        if dtype.startswith(("I", "U", "BOOL")):
            return False
        return not any(role == f or role.startswith(f + ".") for f in self.frozen)

    # -- static checks -------------------------------------------------------------------------

    def check(
        self, shapes: Shapes, tensor: str, path: str, role: str, shape: tuple[int, ...], config: Mapping[str, Any]
    ) -> None:
        if path == SHARED:
            shapes.count += 1
            rule = self.shared_rules.get(_rule_key(role, self.shared_rules))
            if rule is None:
                shapes.not_checked(self._kind(), role)
                return
            dims = Dims(config, "", None, None, _int(config.get("r")), {})
            problem = _unify(rule, shape, dims, role)
            if problem:
                shapes.failures.append(f"{tensor}: {problem}")
            return
        if self.parents and find_module(path, shapes.modules) is None:
            shapes.count += 1
            if not any(m.startswith(path + ".") or m.partition(".")[2].startswith(path + ".") for m in shapes.modules):
                shapes.failures.append(f"{tensor}: the base has no module {path!r}")
            shapes.not_checked(self._kind(), role)
            return
        found = shapes.module(tensor, path)
        if found is None:
            return
        module, w = found
        rule = self.rules.get(_rule_key(role, self.rules))
        linear = len(w) == 2 or (self.conv and len(w) == 4)
        if rule is None or not linear:
            shapes.not_checked(self._kind(), role)
            shapes.fitted.add(module)
            return
        features = shapes.features(w)
        out_f, in_f = features if features is not None else (None, None)
        bound = shapes.bound.setdefault(module, {})
        dims = Dims(config, path, out_f, in_f, shapes.rank(path), bound)
        problem = _unify(rule, shape, dims, role, w)
        if problem is None:
            for constraint in self.constraints:
                problem = constraint(dims)
                if problem:
                    break
        if problem:
            shapes.fail(module, f"{problem} (base weight {shape_text(w)})")
            return
        shapes.fitted.add(module)

    def _kind(self) -> str:
        return "/".join(sorted(self.peft_types))

    # -- merge ---------------------------------------------------------------------------------

    def merge_refusal(self, config: Mapping[str, Any], ref: str) -> str | None:
        if self.merge not in ("peft", "replace"):
            return f"{ref} is a {self._kind()} adapter: {self.merge}"
        return self.refusals(config, ref) if self.refusals is not None else None

    def plan(self, plan: MergePlan, config: Mapping[str, Any], module: str, role: str, key: str) -> None:
        if module == SHARED:
            plan.shared.append(key)
            return
        if self.merge == "replace":
            leaf = role.rpartition(".")[2]
            plan.ops[f"{module}.{leaf}"] = Replace(key)
            return
        weight = plan.ops.get(f"{module}.weight")
        if not isinstance(weight, PeftModule):
            path = key.removeprefix("base_model.model.")[: -len(role) - 1]
            weight = PeftModule(module, path, [], "weight")
            plan.ops[f"{module}.weight"] = weight
            plan.ops[f"{module}.bias"] = PeftModule(module, path, weight.keys, "bias")
        weight.keys.append(key)

    def finish(self, plan: MergePlan, base: Mapping[str, tuple[int, ...]]) -> None:
        for name, op in list(plan.ops.items()):  # a module without a bias in the base merges its weight only
            if isinstance(op, PeftModule) and op.part == "bias" and name not in base:
                del plan.ops[name]


def _rule_key(role: str, rules: Mapping[str, Any]) -> str:
    """A role's rule: its exact name, else its first part (``adamss_A.0`` -> ``adamss_A``)."""
    return role if role in rules else role.split(".")[0]


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _unify(
    rule: tuple[Dim, ...], shape: tuple[int, ...], dims: Dims, role: str, w: tuple[int, ...] | None = None
) -> str | None:
    """None when ``shape`` fits ``rule`` (binding its named dimensions), else what does not fit."""
    if rule == ("W",):
        if w is not None and tuple(shape) != tuple(w):
            return f"{role} is {shape_text(shape)}; it replaces the base weight, so it must be {shape_text(w)}"
        return None
    if len(shape) != len(rule):
        return f"{role} is {shape_text(shape)}, {len(rule)} dimensions expected"
    for axis, (got, want) in enumerate(zip(shape, rule, strict=True)):
        expected, what = _expected(want, dims)
        if expected is None and isinstance(want, str) and want not in ("in", "out", "r"):
            dims.bound[want] = got  # a named dimension: the first tensor of the module binds it
            continue
        if expected is not None and got != expected:
            return f"{role} is {shape_text(shape)}: dimension {axis} is {got}, {what} is {expected}"
    return None


def _expected(want: Dim, dims: Dims) -> tuple[int | None, str]:
    if isinstance(want, int):
        return want, "the method's"
    if want == "in":
        return dims.inp, "the base's in_features"
    if want == "out":
        return dims.out, "the base's out_features"
    if want == "r":
        return dims.rank, "the config's r for this module"
    if isinstance(want, str):
        return dims.bound.get(want), f"{want} (from this module's other tensors)"
    return want(dims), "the config's value"


def needs_saved(what: str) -> Callable[[Mapping[str, Any], str], str | None]:
    """A merge refusal for tuners whose tensors shared by every module are saved only with ``save_projection``:
    without them the merge would have to regenerate them for the whole model, as peft does."""

    def refusal(config: Mapping[str, Any], ref: str) -> str | None:
        if config.get("save_projection") is False:
            return (
                f"{ref} does not save its shared {what} (save_projection: false): peft regenerates them from "
                "projection_prng_key for the whole model; merge it with peft's merge_and_unload"
            )
        return None

    return refusal


def product_is(a: str, b: str, of: str) -> Constraint:
    """A constraint: the named dimensions ``a`` and ``b`` multiply to the base's ``in`` or ``out``."""

    def check(dims: Dims) -> str | None:
        x, y = dims.bound.get(a), dims.bound.get(b)
        total = dims.inp if of == "in" else dims.out
        if x is None or y is None or total is None or x * y == total:
            return None
        return f"the factors {x} x {y} do not make the base's {of}_features {total}"

    return check


def side_of(triangle: str, times: str, of: str, block: Callable[[Dims], int | None] | None = None) -> Constraint:
    """A constraint: ``times`` blocks whose upper triangle has ``triangle`` entries span the base's features."""

    def check(dims: Dims) -> str | None:
        t, n = dims.bound.get(triangle), dims.bound.get(times)
        total = dims.inp if of == "in" else dims.out
        if t is None or n is None or total is None:
            return None
        b = triangle_side(t)
        if b is None:
            return f"{t} is not the upper triangle of a square block"
        if n * b != total:
            return f"{n} blocks of {b} do not span the base's {of}_features {total}"
        wanted = block(dims) if block is not None else None
        if wanted and b != wanted:
            return f"the blocks are {b} wide, the config says {wanted}"
        return None

    return check


def divided(of: str, key: str) -> Callable[[Dims], int | None]:
    """A dimension: the base's ``in``/``out`` features divided by the config's ``key``."""

    def value(dims: Dims) -> int | None:
        total = dims.inp if of == "in" else dims.out
        by = _int(dims.config.get(key))
        return total // by if total is not None and by else None

    return value


def from_config(key: str, pattern_key: str | None = None) -> Callable[[Dims], int | None]:
    """A dimension: the config's ``key`` (by ``pattern_key`` per module first)."""

    def value(dims: Dims) -> int | None:
        return _int(dims.pattern(key, pattern_key) if pattern_key else dims.config.get(key))

    return value
