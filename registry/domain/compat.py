"""Static compatibility of an adapter with a base model, from tensor headers alone.

Pure functions: given the adapter's config and tensor shapes and the base's config and tensor
shapes, say for every adapter tensor which base weight it modifies and whether its shape fits,
whether every target module exists on both sides, and what could not be checked. No weights are
read; this runs in milliseconds for any base size.

The shape rules of each PEFT method live in its module under :mod:`registry.domain.methods`; this
module walks the tensors, hands each to its method, and checks what every method shares:
``modules_to_save`` tensors (exactly the base tensor's shape), target modules and rank/alpha
patterns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from registry.domain.adapterdir import (
    PEFT_PREFIX,
    PeftFacts,
    TensorInfo,
    pattern_value,
    strip_peft_prefix,
    target_matches,
    targets_are_regex,
)
from registry.domain.methods import method_for, prompt
from registry.domain.methods.base import MAX_LISTED, Check, Shapes, find_module, shape_text, split_suffix

if TYPE_CHECKING:  # versions imports verification, which imports this module
    from registry.domain.versions import BaseModel

__all__ = [
    "EMBEDDING_KEYS",
    "Check",
    "base_modules",
    "check_fingerprint",
    "difference_text",
    "find_module",
    "fingerprint_matches",
    "static_checks",
    "weights_difference",
]

EMBEDDING_KEYS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "embed_in.weight", "shared.weight")


def weights_difference(
    recorded: Sequence[tuple[str, str]] | None, actual: Sequence[tuple[str, str]] | None
) -> tuple[str, ...]:
    """Which weight files differ between two ``(path, sha256)`` lists, one line each ("changed: PATH",
    "removed: PATH" (recorded, not in the base given), "added: PATH"); empty when either list is unknown."""
    if recorded is None or actual is None:
        return ()
    before, now = dict(recorded), dict(actual)
    changed = [f"changed: {p}" for p in sorted(before) if p in now and now[p] != before[p]]
    removed = [f"removed: {p}" for p in sorted(before) if p not in now]
    added = [f"added: {p}" for p in sorted(now) if p not in before]
    return tuple(changed + removed + added)


def difference_text(lines: Sequence[str]) -> str:
    """``lines`` of :func:`weights_difference` as a clause for a message ("" when there are none)."""
    if not lines:
        return ""
    shown = 5
    more = f" and {len(lines) - shown} more" if len(lines) > shown else ""
    return f" (weight files {', '.join(lines[:shown])}{more})"


def fingerprint_matches(recorded: str | None, actual: str | None, also_known_as: Sequence[str] = ()) -> bool:
    """The base given has the recorded fingerprint (``also_known_as``: its fingerprint as listed by earlier releases)."""
    return recorded is not None and (recorded == actual or recorded in also_known_as)


def check_fingerprint(
    recorded: BaseModel, actual: BaseModel, allow_mismatch: bool, also_known_as: Sequence[str] = ()
) -> Check:
    """The base given now is the base recorded at push, by content; a mismatch names the files that differ
    when both sides' weight files are known."""
    name = "base-fingerprint"
    want, have = recorded.fingerprint, actual.fingerprint
    if want is None:
        return Check(name, None, "not checked: no base fingerprint was recorded at push (the base was not found then)")
    if have is None:
        return Check(name, None, "not checked: the base given has no weight files to fingerprint")
    if fingerprint_matches(want, have, also_known_as):
        return Check(name, True, f"the base's weights match the fingerprint recorded at push ({want[:19]}…)")
    diff = weights_difference(recorded.weights, actual.weights)
    if allow_mismatch:
        return Check(
            name,
            True,
            f"MISMATCH ALLOWED (--allow-base-mismatch): the base's fingerprint {have[:19]}… differs from the "
            f"{want[:19]}… recorded at push{difference_text(diff)}",
            diff,
        )
    return Check(
        name,
        False,
        f"the base's weights ({have[:19]}…) are not the ones recorded at push ({want[:19]}…){difference_text(diff)}: "
        "this is a different base or a different revision; verify against the recorded base, or pass "
        "--allow-base-mismatch",
        diff,
    )


def base_modules(base_tensors: Sequence[TensorInfo]) -> dict[str, tuple[int, ...]]:
    """Module name -> weight shape, for every module of the base that has a ``.weight``."""
    return {t.name[: -len(".weight")]: t.shape for t in base_tensors if t.name.endswith(".weight")}


def _owner(name: str, modules: Mapping[str, tuple[int, ...]]) -> str | None:
    """The base module a tensor of unknown role belongs to: its longest dotted prefix found in the base."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        found = find_module(".".join(parts[:i]), modules)
        if found is not None:
            return found
    return None


def _tied_embedding(modules: Mapping[str, tuple[int, ...]]) -> str | None:
    for module in modules:
        if any((module + ".weight").endswith(k) for k in EMBEDDING_KEYS):
            return module
    return None


def _resized(module: str, shape: Sequence[int], w: Sequence[int]) -> str:
    if len(shape) == 2 and len(w) == 2 and shape[1] == w[1] and shape[0] != w[0]:
        return (
            f"{module}: the adapter saves a {shape_text(shape)} tensor, the base has {shape_text(w)}: a resized "
            f"vocabulary ({shape[0]} tokens vs the base's {w[0]}); resize the base's token embeddings to "
            f"{shape[0]} (model.resize_token_embeddings) before loading"
        )
    return f"{module}: the adapter saves a {shape_text(shape)} tensor, the base weight is {shape_text(w)}"


def _saved(shapes: Shapes, tensor: str, path: str, leaf: str, shape: tuple[int, ...]) -> None:
    """A modules_to_save tensor: a full replacement, so it must have the base tensor's shape."""
    module = find_module(path, shapes.modules)
    if module is None and path.endswith(("lm_head", "embed_out")):
        module = _tied_embedding(shapes.modules)  # tied output embeddings are saved once, as the input embedding
    shapes.count += 1
    if module is None:
        shapes.failures.append(f"{tensor}: modules_to_save names {path!r}, which the base does not have")
        return
    w = shapes.modules[module]
    if leaf == "weight" and tuple(shape) != tuple(w):
        shapes.failures.append(_resized(path, shape, w))
        return
    shapes.fitted.add(module)


def static_checks(
    facts: PeftFacts,
    config: Mapping[str, Any],
    adapter_tensors: Sequence[TensorInfo],
    base_tensors: Sequence[TensorInfo],
    base_config: Mapping[str, Any],
) -> tuple[list[Check], list[str]]:
    """All header-level checks; returns the checks and plain sentences saying what was not checked."""
    if facts.type in prompt.PROMPT_TYPES:
        return prompt.static_checks(facts, config, adapter_tensors, base_config)
    method = method_for(facts.type)
    modules = base_modules(base_tensors)
    embedding_modules = {
        split[0]
        for t in adapter_tensors
        if (split := split_suffix(strip_peft_prefix(t.name), ("lora_embedding_A", "lora_embedding_B")))
    }
    shapes = Shapes(facts, modules, {m for p in embedding_modules if (m := find_module(p, modules))})
    saved = facts.modules_to_save or []
    other: list[TensorInfo] = []
    for t in adapter_tensors:
        name = strip_peft_prefix(t.name)
        path, _, leaf = name.rpartition(".")
        if method is not None and (split := method.split(name)):
            method.check(shapes, t.name, split[0], split[1], t.shape, config)
        elif leaf in ("weight", "bias") and any(target_matches(s, path) for s in saved):
            _saved(shapes, t.name, path, leaf, t.shape)
        else:
            other.append(t)
    checks = [shapes.result(len(adapter_tensors))] if shapes.count else []
    unchecked: list[str] = []
    for kind, roles in sorted(shapes.unchecked.items()):
        unchecked.append(
            f"the shapes of {shapes.unchecked_count} {kind} tensors ({', '.join(sorted(roles))}) were not checked: "
            "no shape rule covers them against this base module; that each one's module exists in the base was"
        )
    if other:
        orphans = [t.name for t in other if _owner(strip_peft_prefix(t.name), modules) is None]
        checks.append(
            Check(
                "tensor-modules",
                not orphans,
                f"{len(orphans)} adapter tensors belong to no module of the base; first: {orphans[0]}"
                if orphans
                else f"the {len(other)} {facts.type} tensors all belong to modules of the base",
                tuple(orphans[:MAX_LISTED]),
            )
        )
        unchecked.append(
            f"the shapes of {len(other)} {facts.type} tensors (e.g. {other[0].name}) were not checked: "
            f"no method module knows their roles; only that each tensor's module exists in the base was"
        )
    checks.append(_targets(facts, adapter_tensors, modules))
    adapted = _adapted(facts, adapter_tensors)
    if facts.rank_pattern:
        checks.append(_pattern_keys("rank_pattern", facts.rank_pattern, adapted))
    if facts.alpha_pattern:
        checks.append(_pattern_keys("alpha_pattern", facts.alpha_pattern, adapted))
    return checks, unchecked


def _adapted(facts: PeftFacts, adapter_tensors: Sequence[TensorInfo]) -> set[str]:
    """Module paths the adapter holds tuner weights for (by its method's tensor roles)."""
    method = method_for(facts.type)
    if method is None:
        return set()
    return {split[0] for t in adapter_tensors if (split := method.split(strip_peft_prefix(t.name)))}


def _pattern_keys(name: str, patterns: Mapping[str, Any], adapted: set[str]) -> Check:
    dead = [k for k in patterns if not any(pattern_value({k: True}, m) for m in adapted)]
    check = name.replace("_", "-")
    if dead:
        return Check(check, False, f"{name} keys {dead} match no adapted module, so they have no effect")
    return Check(check, True, f"every {name} key matches an adapted module")


def _targets(facts: PeftFacts, adapter_tensors: Sequence[TensorInfo], modules: Mapping[str, tuple[int, ...]]) -> Check:
    targets = facts.target_modules
    if targets is None:
        return Check("target-modules", None, "not checked: the config lists no target modules")
    if adapter_tensors and not any(t.name.startswith(PEFT_PREFIX) for t in adapter_tensors):
        return Check(
            "target-modules",
            None,
            f"not checked: the {facts.type} adapter saves only tensors shared by every module, none named by a module",
        )
    regex = targets_are_regex(facts)
    wanted = [targets] if isinstance(targets, str) else list(targets)
    adapter_modules = _adapted(facts, adapter_tensors)
    # the modules with weights and the blocks holding them (the adaption prompt targets attention blocks)
    base_paths = {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 2)}
    problems = []
    for target in wanted:
        in_adapter = any(target_matches(target, m, regex=regex) for m in adapter_modules)
        in_base = any(target_matches(target, m, regex=regex) for m in base_paths) or any(
            target_matches(target, m.split(".", 1)[-1], regex=regex) for m in base_paths
        )
        if not in_adapter and not in_base:
            problems.append(f"target {target!r} matches no adapter tensor and no base module")
        elif not in_adapter:
            problems.append(
                f"target {target!r} matches base modules but no adapter tensor: the adapter holds no weights for it"
            )
        elif not in_base:
            problems.append(f"target {target!r} matches no module of the base")
    if problems:
        return Check("target-modules", False, problems[0], tuple(problems))
    return Check(
        "target-modules", True, f"all {len(wanted)} target module patterns match adapter tensors and base modules"
    )
