"""Governance policies: a fixed set of rule kinds, read from YAML, evaluated to one result per rule.

Rule kinds (top-level keys of a policy file; every key is optional, unknown keys are errors):

``approvals``      ``count`` (int), ``roles`` (list; empty = any registered user), ``distinct``
                   (approvers must be different people), ``author_may_approve`` (bool),
                   ``independent_of_author`` (no approver whose account, role or key the author granted)
``required``       ``metadata`` (dotted fields of the version that must be present, e.g.
                   ``description``, ``base.fingerprint``), ``datasets`` (``min`` datasets, and
                   ``fields`` every dataset must have, e.g. ``license``, ``sha256``)
``evals``          a list of ``{metric, min, max, dataset}`` thresholds on the latest value
``verification``   ``mode`` (``static``/``load``/``all``) a passing report must have, and
                   ``on_recorded_base`` (the report's base fingerprint equals the one recorded at push)
``limits``         ``max_rank``, ``allowed_bases`` (names or ``sha256:`` fingerprints),
                   ``allowed_quantization``, ``allowed_peft_types``
``channels``       ``order``: releasing to a channel needs a prior release to the one before it
``serving``        ``targets``: a list of ``{engine, max_lora_rank, lora_target_modules, model_type}``
                   (engine ``vllm``/``sglang``/``lorax``/``tgi``; the limits as the engine is started): the
                   version must pass every rule of each engine (:mod:`registry.domain.serving`), judged
                   from its stored config and tensor headers by the registry itself
``signatures``     ``required``: approvals, rejections, releases and rollbacks are signed with
                   the actor's registered Ed25519 key
``name``, ``description``   documentation
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry.domain.canonical import sha256_digest
from registry.domain.documents import DocumentError, check_size, load_yaml
from registry.domain.serving import ServingTarget, target_problem
from registry.errors import PolicyError
from registry.types import DATASET_KEYS, QUANTIZATION_METHODS, ROLES, VERIFY_MODES

__all__ = ["EvalThreshold", "Policy"]

_TOP = (
    "name", "description", "approvals", "required", "evals", "verification", "limits", "channels", "serving",
    "signatures",
)  # fmt: skip
_APPROVALS = ("count", "roles", "distinct", "author_may_approve", "independent_of_author")
_REQUIRED = ("metadata", "datasets")
_REQUIRED_DATASETS = ("min", "fields")
_EVAL = ("metric", "min", "max", "dataset")
_VERIFICATION = ("mode", "on_recorded_base")
_LIMITS = ("max_rank", "allowed_bases", "allowed_quantization", "allowed_peft_types")
_CHANNELS = ("order",)
_SIGNATURES = ("required",)
_SERVING = ("targets",)
_SERVING_TARGET = ("engine", "max_lora_rank", "lora_target_modules", "model_type")
_METADATA_ROOTS = ("description", "base", "quantization", "training", "parent", "peft", "datasets")


@dataclass(frozen=True)
class EvalThreshold:
    metric: str
    min: float | None = None
    max: float | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``digest`` is the sha256 of the exact file content."""

    content: str
    name: str = "unnamed"
    description: str | None = None
    approval_count: int = 1
    approval_roles: tuple[str, ...] = ()
    approvals_distinct: bool = True
    author_may_approve: bool = True
    approvals_independent_of_author: bool = False
    required_metadata: tuple[str, ...] = ()
    min_datasets: int = 0
    dataset_fields: tuple[str, ...] = ()
    evals: tuple[EvalThreshold, ...] = ()
    verification_mode: str | None = None
    verification_on_recorded_base: bool = True
    max_rank: int | None = None
    allowed_bases: tuple[str, ...] = ()
    allowed_quantization: tuple[str, ...] = ()
    allowed_peft_types: tuple[str, ...] = ()
    channel_order: tuple[str, ...] = ()
    serving_targets: tuple[ServingTarget, ...] = ()
    signatures_required: bool = False

    @property
    def digest(self) -> str:
        return sha256_digest(self.content.encode("utf-8"))

    @classmethod
    def parse(cls, content: str, source: str = "policy") -> Policy:
        try:
            check_size(len(content.encode("utf-8")), source)
            data = load_yaml(content, source)
        except DocumentError as exc:
            raise PolicyError(f"{exc}; a policy is a YAML file of at most 1 MiB (see policies/default.yaml)") from None
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source} must be a mapping of rule kinds ({', '.join(_TOP)})")
        _keys(data, _TOP, source)
        approvals = _section(data, "approvals", _APPROVALS, source)
        required = _section(data, "required", _REQUIRED, source)
        datasets = required.get("datasets") or {}
        if not isinstance(datasets, Mapping):
            raise PolicyError(f"{source}: required.datasets must be a mapping with min and fields")
        _keys(datasets, _REQUIRED_DATASETS, f"{source}: required.datasets")
        verification = _section(data, "verification", _VERIFICATION, source)
        limits = _section(data, "limits", _LIMITS, source)
        channels = _section(data, "channels", _CHANNELS, source)
        signatures = _section(data, "signatures", _SIGNATURES, source)
        serving = _section(data, "serving", _SERVING, source)
        policy = cls(
            content=content,
            name=str(data.get("name") or "unnamed"),
            description=data.get("description"),
            approval_count=_int(approvals, "count", 1, source, "approvals"),
            approval_roles=_roles(approvals.get("roles"), source),
            approvals_distinct=_bool(approvals, "distinct", True, source, "approvals"),
            author_may_approve=_bool(approvals, "author_may_approve", True, source, "approvals"),
            approvals_independent_of_author=_bool(approvals, "independent_of_author", False, source, "approvals"),
            required_metadata=_metadata(required.get("metadata"), source),
            min_datasets=_int(datasets, "min", 0, source, "required.datasets"),
            dataset_fields=_choices(datasets.get("fields"), DATASET_KEYS, source, "required.datasets.fields"),
            evals=_evals(data.get("evals"), source),
            verification_mode=_choice(verification.get("mode"), VERIFY_MODES, source, "verification.mode")
            if verification
            else None,
            verification_on_recorded_base=_bool(verification, "on_recorded_base", True, source, "verification"),
            max_rank=_int(limits, "max_rank", None, source, "limits"),
            allowed_bases=_strings(limits.get("allowed_bases"), source, "limits.allowed_bases"),
            allowed_quantization=_choices(
                limits.get("allowed_quantization"), QUANTIZATION_METHODS, source, "limits.allowed_quantization"
            ),
            allowed_peft_types=tuple(
                s.upper() for s in _strings(limits.get("allowed_peft_types"), source, "limits.allowed_peft_types")
            ),
            channel_order=_strings(channels.get("order"), source, "channels.order"),
            serving_targets=_serving(serving, source),
            signatures_required=_bool(signatures, "required", False, source, "signatures"),
        )
        if policy.approval_count < 0:
            raise PolicyError(f"{source}: approvals.count must be >= 0")
        return policy


def _keys(data: Mapping[str, Any], allowed: Sequence[str], source: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise PolicyError(f"{source}: unknown key {unknown[0]!r}; allowed here: {', '.join(allowed)}")


def _section(data: Mapping[str, Any], key: str, allowed: Sequence[str], source: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{source}: {key!r} must be a mapping with keys {', '.join(allowed)}")
    _keys(value, allowed, f"{source}: {key}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int | None, source: str, section: str) -> Any:
    value = data.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise PolicyError(f"{source}: {section}.{key} must be an integer, not {value!r}")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool, source: str, section: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(f"{source}: {section}.{key} must be true or false, not {value!r}")
    return value


def _strings(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{source}: {where} must be a list of strings")
    return tuple(value)


def _choices(value: Any, allowed: Sequence[str], source: str, where: str) -> tuple[str, ...]:
    items = _strings(value, source, where)
    for item in items:
        _choice(item, allowed, source, where)
    return items


def _choice(value: Any, allowed: Sequence[str], source: str, where: str) -> str:
    if value not in allowed:
        raise PolicyError(f"{source}: {where} is {value!r}; use one of {', '.join(allowed)}")
    return str(value)


def _roles(value: Any, source: str) -> tuple[str, ...]:
    return _choices(value, ROLES, source, "approvals.roles")


def _metadata(value: Any, source: str) -> tuple[str, ...]:
    fields = _strings(value, source, "required.metadata")
    for f in fields:
        if f.split(".", 1)[0] not in _METADATA_ROOTS:
            raise PolicyError(
                f"{source}: required.metadata field {f!r} is not a version fact; use fields under {', '.join(_METADATA_ROOTS)}"
            )
    return fields


def _evals(value: Any, source: str) -> tuple[EvalThreshold, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError(f"{source}: evals must be a list of {{metric, min, max, dataset}}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or "metric" not in item:
            raise PolicyError(f"{source}: evals[{i}] needs a metric")
        _keys(item, _EVAL, f"{source}: evals[{i}]")
        for bound in ("min", "max"):
            if item.get(bound) is not None and (
                not isinstance(item[bound], (int, float)) or isinstance(item[bound], bool)
            ):
                raise PolicyError(f"{source}: evals[{i}].{bound} must be a number")
        if item.get("min") is None and item.get("max") is None:
            raise PolicyError(f"{source}: evals[{i}] ({item['metric']}) needs min or max")
        out.append(
            EvalThreshold(
                metric=str(item["metric"]), min=item.get("min"), max=item.get("max"), dataset=item.get("dataset")
            )
        )
    return tuple(out)


def _serving(section: Mapping[str, Any], source: str) -> tuple[ServingTarget, ...]:
    """``serving.targets``: each a mapping with an ``engine`` and the limits it is started with."""
    if not section:
        return ()
    targets = section.get("targets")
    if not isinstance(targets, list) or not targets:
        raise PolicyError(
            f"{source}: serving.targets must be a non-empty list of {{engine, max_lora_rank, lora_target_modules, "
            "model_type}} (e.g. [{engine: vllm, max_lora_rank: 64}])"
        )
    out = []
    for i, item in enumerate(targets):
        where = f"serving.targets[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{source}: {where} must be a mapping with an engine, not {item!r}")
        _keys(item, _SERVING_TARGET, f"{source}: {where}")
        if "engine" not in item:
            raise PolicyError(f"{source}: {where} needs an engine (vllm, sglang, lorax or tgi)")
        problem = target_problem(item["engine"], item.get("max_lora_rank"), item.get("lora_target_modules"),
                                 item.get("model_type"))  # fmt: skip
        if problem is not None:
            raise PolicyError(f"{source}: {where}.{problem[0]}: {problem[1]}")
        modules = item.get("lora_target_modules")
        out.append(
            ServingTarget(
                str(item["engine"]),
                item.get("max_lora_rank"),
                tuple(modules) if modules is not None else None,
                item.get("model_type"),
            )
        )
    return tuple(out)
