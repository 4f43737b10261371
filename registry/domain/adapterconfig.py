"""``adapter_config.json``, read as untrusted input: its size, its JSON and the values the registry uses.

peft writes this file; anybody can edit it. Before a fact is taken from it, the keys the registry
reads are checked against what peft itself would accept, so that a hostile value is refused at
push (naming the key and the fix) instead of being stored and crashing ``verify`` or ``merge``
later, or slipping past a policy (``r: -5`` under ``max_rank``):

* at most :data:`MAX_CONFIG_BYTES`, strict JSON (no ``NaN``/``Infinity``), not nested too deep;
* ``r`` a positive integer (``0`` is OFT's "use oft_block_size"), ``lora_alpha``/``alpha`` numbers;
* ``rank_pattern``/``alpha_pattern`` mappings whose keys are regular expressions (peft matches them
  as ``(.*\\.)?(KEY)$``) and whose values are ranks / alphas;
* ``target_modules`` a list of module names or one regular expression (matched whole);
* ``modules_to_save`` a list of module names; the flags ``use_rslora``/``use_dora``/``fan_in_fan_out``
  true or false; ``task_type``/``peft_version``/``base_model_name_or_path`` text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry.domain.documents import DocumentError, as_text, check_size, load_json, read_document
from registry.errors import InvalidAdapter

__all__ = ["MAX_CONFIG_BYTES", "parse_config", "read_config"]

#: The largest adapter_config.json read; peft writes a few KiB.
MAX_CONFIG_BYTES = 1 << 20
_RESAVE = "re-save the adapter with peft's save_pretrained"
_FLAGS = ("use_rslora", "use_dora", "fan_in_fan_out")
_TEXTS = ("task_type", "peft_version", "base_model_name_or_path")
#: OFT's r=0 means "size the blocks by oft_block_size instead".
_ZERO_RANK_TYPES = frozenset({"OFT"})
#: rank_pattern values that are not ranks: AdaLoRA saves boolean masks, OSF fractions.
_RANK_MASK_TYPES = frozenset({"ADALORA"})
_RANK_FRACTION_TYPES = frozenset({"OSF"})


class _Bad(Exception):
    """One value that is wrong: ``what`` is the problem and the fix, without the file's name."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def read_config(path: Path, shown: Path) -> dict[str, Any]:
    """The checked content of an adapter's ``adapter_config.json`` (``shown`` is its name for messages)."""
    try:
        data = read_document(path, str(shown), MAX_CONFIG_BYTES)
    except DocumentError as exc:
        raise InvalidAdapter(f"{exc}; {_RESAVE}", str(shown)) from None
    return parse_config(data, str(shown))


def parse_config(data: bytes, shown: str) -> dict[str, Any]:
    """The checked content of ``adapter_config.json`` bytes read from anywhere (a file, a stored blob)."""
    try:
        check_size(len(data), shown, MAX_CONFIG_BYTES)
        config = load_json(as_text(data, shown), shown)
    except DocumentError as exc:
        raise InvalidAdapter(f"{exc}; {_RESAVE}", shown) from None
    if not isinstance(config, dict):
        raise InvalidAdapter(f"{shown} must hold a JSON object; {_RESAVE}", shown)
    peft_type = config.get("peft_type")
    if not peft_type and isinstance(config.get("config"), dict) and "model_class" in config:
        architecture = config["config"].get("architecture") or "an"
        raise InvalidAdapter(
            f"{shown} describes an AdapterHub adapter ({architecture} architecture, saved by the `adapters` "
            "library), not a peft one; the registry does not store AdapterHub adapters yet: push a peft adapter "
            "(peft's save_pretrained)",
            shown,
        )
    if not isinstance(peft_type, str) or not peft_type:
        raise InvalidAdapter(
            f"{shown} has no 'peft_type'; it was not written by peft (save the adapter with peft's save_pretrained)",
            shown,
        )
    try:
        _check_values(config, peft_type.upper())
    except _Bad as exc:
        raise InvalidAdapter(f"{shown}: {exc.what}; fix the value or {_RESAVE}", shown) from None
    return config


def _check_values(config: Mapping[str, Any], peft_type: str) -> None:
    _check_rank("'r'", config.get("r"), allow_zero=peft_type in _ZERO_RANK_TYPES)
    for key in ("lora_alpha", "alpha"):
        _check_number(f"'{key}'", config.get(key))
    if peft_type in _RANK_MASK_TYPES:
        _check_patterns(config, "rank_pattern", _check_mask)
    elif peft_type in _RANK_FRACTION_TYPES:
        _check_patterns(config, "rank_pattern", _check_positive_number)
    else:
        _check_patterns(config, "rank_pattern", _check_rank)
    _check_patterns(config, "alpha_pattern", _check_number)
    _check_targets(config.get("target_modules"))
    modules = config.get("modules_to_save")
    if modules is not None and not _is_names(modules):
        raise _Bad(f"'modules_to_save' is {_show(modules)}; it must be a list of module names (or null)")
    for key in _FLAGS:
        if config.get(key) is not None and not isinstance(config[key], bool):
            raise _Bad(f"'{key}' is {_show(config[key])}; it must be true or false")
    for key in _TEXTS:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise _Bad(f"'{key}' is {_show(config[key])}; it must be a string (or null)")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_names(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _check_rank(where: str, value: Any, allow_zero: bool = False) -> None:
    if value is None:
        return
    smallest = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
        raise _Bad(f"{where} is {_show(value)}; a rank must be a positive integer (peft's r=...)")


def _check_number(where: str, value: Any) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise _Bad(f"{where} is {_show(value)}; it must be a number")


def _check_positive_number(where: str, value: Any) -> None:
    _check_number(where, value)
    if value is not None and value <= 0:
        raise _Bad(f"{where} is {_show(value)}; it must be a positive number")


def _check_mask(where: str, value: Any) -> None:
    if value is not None and not (isinstance(value, list) and all(isinstance(v, bool) for v in value)):
        raise _Bad(f"{where} is {_show(value)}; AdaLoRA's rank pattern is a list of true/false")


def _check_regex(pattern: str) -> str | None:
    """Why ``pattern`` is not a regular expression, or None when it is one."""
    try:
        re.compile(pattern)
        re.compile(rf"(.*\.)?({pattern})$")  # the form peft and the registry match module names with
    except (re.error, RecursionError, OverflowError) as exc:
        return str(exc)
    return None


def _check_patterns(config: Mapping[str, Any], key: str, check_value: Any) -> None:
    patterns = config.get(key)
    if patterns is None:
        return
    if not isinstance(patterns, dict):
        raise _Bad(f"'{key}' must be a mapping of module-name pattern to value, not {_show(patterns)}")
    for pattern, value in patterns.items():
        why = _check_regex(pattern)
        if why is not None:
            raise _Bad(f"'{key}' key {pattern!r} is not a valid regular expression ({why})")
        check_value(f"'{key}'[{pattern!r}]", value)


def _check_targets(targets: Any) -> None:
    if targets is None:
        return
    if isinstance(targets, str):
        why = _check_regex(targets)
        if why is not None:
            raise _Bad(
                f"'target_modules' is the regular expression {targets!r}, which is not valid ({why}); "
                "a string target_modules is a regular expression matched against whole module names"
            )
        return
    if not _is_names(targets):
        raise _Bad(f"'target_modules' is {_show(targets)}; it must be a list of module names or a regular expression")
