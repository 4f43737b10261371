"""The facts a user states at push time: base, quantization, datasets, evals, training.

They arrive as CLI flags (``--dataset name=x,license=mit``, ``--eval accuracy=0.91``)
or as a YAML/JSON file (``--meta``); both are parsed here into frozen values and
every unknown key or bad value is refused with a message naming it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from registry.domain.documents import DocumentError, as_text, load_json, load_yaml, read_document
from registry.errors import InvalidMetadata
from registry.types import COMPUTE_DTYPES, DATASET_KEYS, QUANTIZATION_METHODS

__all__ = [
    "META_KEYS",
    "Dataset",
    "Evaluation",
    "PushMetadata",
    "Quantization",
]

META_KEYS = (
    "base",
    "base_name",
    "base_revision",
    "quantization",
    "datasets",
    "evals",
    "training",
    "description",
    "parent",
)
_METRIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Quantization:
    """How the base was quantized while the adapter was trained."""

    method: str = "none"
    double_quant: bool | None = None
    compute_dtype: str | None = None

    def __post_init__(self) -> None:
        if self.method not in QUANTIZATION_METHODS:
            raise InvalidMetadata(
                f"unknown quantization {self.method!r}; use one of {', '.join(QUANTIZATION_METHODS)}",
                "quantization",
            )
        if self.compute_dtype is not None and self.compute_dtype not in COMPUTE_DTYPES:
            raise InvalidMetadata(
                f"unknown compute dtype {self.compute_dtype!r}; use one of {', '.join(COMPUTE_DTYPES)}",
                "quantization.compute_dtype",
            )

    @classmethod
    def parse(cls, value: Any) -> Quantization:
        """From ``"nf4"`` or ``{"method": "nf4", "double_quant": true, "compute_dtype": "bfloat16"}``."""
        if isinstance(value, Quantization):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(method=value.strip().lower())
        if isinstance(value, Mapping):
            unknown = set(value) - {"method", "double_quant", "compute_dtype"}
            if unknown:
                raise InvalidMetadata(
                    f"unknown quantization key(s) {sorted(unknown)}; allowed: method, double_quant, compute_dtype",
                    "quantization",
                )
            dq = value.get("double_quant")
            if dq is not None and not isinstance(dq, bool):
                raise InvalidMetadata("quantization.double_quant must be true or false", "quantization.double_quant")
            return cls(
                method=str(value.get("method", "none")).lower(),
                double_quant=dq,
                compute_dtype=value.get("compute_dtype"),
            )
        raise InvalidMetadata(f"quantization must be a string or a mapping, not {type(value).__name__}", "quantization")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "double_quant": self.double_quant, "compute_dtype": self.compute_dtype}

    def with_defaults(self) -> Quantization:
        """Complete, as recorded at push: what was not said is what bitsandbytes and transformers default
        to (``BitsAndBytesConfig``: no double quantization, float32 compute for 4-bit), written down
        rather than left null, so a later merge or load check never guesses."""
        if self.method in ("nf4", "fp4"):
            return Quantization(
                self.method,
                False if self.double_quant is None else self.double_quant,
                self.compute_dtype or "float32",
            )
        if self.method == "int8":
            return Quantization(self.method, False, self.compute_dtype)
        return self


@dataclass(frozen=True)
class Dataset:
    """One dataset the adapter was trained on."""

    name: str
    uri: str | None = None
    revision: str | None = None
    sha256: str | None = None
    license: str | None = None
    rows: int | None = None
    split: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise InvalidMetadata("a dataset needs a name (name=...)", "datasets.name")
        if self.sha256 is not None and not _HEX64.match(self.sha256):
            raise InvalidMetadata(
                f"dataset {self.name!r}: sha256 must be 64 hex digits, got {self.sha256!r}", "datasets.sha256"
            )
        if self.rows is not None and self.rows < 0:
            raise InvalidMetadata(f"dataset {self.name!r}: rows must be >= 0", "datasets.rows")

    @classmethod
    def parse(cls, spec: str) -> Dataset:
        """Parse ``key=value[,key=value...]`` (keys: name, uri, revision, sha256, license, rows, split, path)."""
        values: dict[str, str] = {}
        for part in spec.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep:
                raise InvalidMetadata(
                    f"dataset spec {spec!r}: {part!r} is not key=value; write e.g. "
                    "--dataset name=support-tickets,license=cc-by-4.0,path=data/train.jsonl",
                    "datasets",
                )
            if key in values:
                raise InvalidMetadata(f"dataset spec {spec!r} gives {key!r} twice", "datasets")
            values[key] = value.strip()
        return cls.from_mapping(values, source=f"dataset spec {spec!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "dataset") -> Dataset:
        unknown = sorted(set(values) - set(DATASET_KEYS))
        if unknown:
            raise InvalidMetadata(
                f"{source}: unknown key(s) {unknown}; allowed keys are {', '.join(DATASET_KEYS)}", "datasets"
            )
        if not values.get("name"):
            raise InvalidMetadata(f"{source}: 'name' is required (name=...)", "datasets.name")
        rows = values.get("rows")
        if rows is not None and rows != "":
            try:
                rows = int(rows)
            except (TypeError, ValueError):
                raise InvalidMetadata(f"{source}: rows must be an integer, got {rows!r}", "datasets.rows") from None
        else:
            rows = None
        sha = values.get("sha256")
        if isinstance(sha, str):
            sha = sha.lower().removeprefix("sha256:")

        def text(key: str) -> str | None:
            v = values.get(key)
            return None if v is None or v == "" else str(v)

        return cls(
            name=str(values["name"]),
            uri=text("uri"),
            revision=text("revision"),
            sha256=sha or None,
            license=text("license"),
            rows=rows,
            split=text("split"),
            path=text("path"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in DATASET_KEYS}


@dataclass(frozen=True)
class Evaluation:
    """One evaluation result: a metric's value, optionally on a named dataset."""

    metric: str
    value: float
    dataset: str | None = None

    def __post_init__(self) -> None:
        if not _METRIC_RE.match(self.metric):
            raise InvalidMetadata(
                f"invalid metric name {self.metric!r}; use letters, digits, '_', '.', '-', '/'", "evals"
            )
        if not math.isfinite(self.value):
            raise InvalidMetadata(f"metric {self.metric!r}: value must be a finite number", "evals")

    @classmethod
    def parse(cls, spec: str, dataset: str | None = None) -> Evaluation:
        """Parse ``METRIC=VALUE``."""
        metric, sep, raw = spec.partition("=")
        if not sep:
            raise InvalidMetadata(f"eval {spec!r} is not METRIC=VALUE; write e.g. --eval accuracy=0.91", "evals")
        return cls(metric=metric.strip(), value=_number(raw, metric.strip()), dataset=dataset)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "dataset": self.dataset}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Evaluation:
        """From :meth:`to_dict`'s shape (a request's JSON), checked as every evaluation is."""
        metric, dataset = values.get("metric"), values.get("dataset")
        if not isinstance(metric, str) or not (dataset is None or isinstance(dataset, str)):
            raise InvalidMetadata(f"an evaluation is {{metric, value, dataset}}, not {dict(values)!r}", "evals")
        return cls(metric=metric, value=_number(values.get("value"), metric), dataset=dataset)


def _number(raw: Any, metric: str) -> float:
    if isinstance(raw, bool):
        raise InvalidMetadata(f"metric {metric!r}: value must be a number, got {raw!r}", "evals")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise InvalidMetadata(f"metric {metric!r}: value must be a number, got {raw!r}", "evals") from None


def _parse_evals(value: Any) -> tuple[Evaluation, ...]:
    """``{metric: value}``, or a list of ``{metric, value, dataset}``."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(Evaluation(metric=str(k), value=_number(v, str(k))) for k, v in value.items())
    if isinstance(value, list):
        out = []
        for item in value:
            if not isinstance(item, Mapping) or "metric" not in item or "value" not in item:
                raise InvalidMetadata(
                    "each entry of 'evals' needs 'metric' and 'value' (and optionally 'dataset')", "evals"
                )
            unknown = set(item) - {"metric", "value", "dataset"}
            if unknown:
                raise InvalidMetadata(
                    f"unknown eval key(s) {sorted(unknown)}; allowed: metric, value, dataset", "evals"
                )
            metric = str(item["metric"])
            out.append(Evaluation(metric=metric, value=_number(item["value"], metric), dataset=item.get("dataset")))
        return tuple(out)
    raise InvalidMetadata(
        "'evals' must be a mapping of metric to value, or a list of {metric, value, dataset}", "evals"
    )


def _merge_by(old: Iterable[Any], new: Iterable[Any], key: Any) -> tuple[Any, ...]:
    merged = {key(x): x for x in old}
    for x in new:
        merged[key(x)] = x
    return tuple(merged.values())


@dataclass(frozen=True)
class PushMetadata:
    """Everything stated about a version at push time, before it is resolved against disk."""

    base: str | None = None
    base_revision: str | None = None
    quantization: Quantization | None = None
    datasets: tuple[Dataset, ...] = ()
    evals: tuple[Evaluation, ...] = ()
    training: Mapping[str, Any] | None = None
    description: str | None = None
    parent: str | None = None
    base_name: str | None = None  # the base's identity (a Hub id) when ``base`` is a directory
    allow_unverified_base: bool = False  # a decision, not a fact: a flag only, never read from a file

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "metadata") -> PushMetadata:
        """Parse the keys of a metadata file; every error names ``source``."""
        try:
            return cls._from_mapping(values, source)
        except InvalidMetadata as exc:
            if source in exc.message:
                raise
            raise InvalidMetadata(f"{source}: {exc.message}", exc.field) from None

    @classmethod
    def _from_mapping(cls, values: Mapping[str, Any], source: str) -> PushMetadata:
        unknown = sorted(set(values) - set(META_KEYS))
        if unknown:
            raise InvalidMetadata(f"{source}: unknown key(s) {unknown}; allowed keys are {', '.join(META_KEYS)}")
        datasets = values.get("datasets") or []
        if not isinstance(datasets, list):
            raise InvalidMetadata(f"{source}: 'datasets' must be a list of mappings", "datasets")
        parsed_datasets = []
        for i, d in enumerate(datasets):
            if not isinstance(d, Mapping):
                raise InvalidMetadata(f"{source}: datasets[{i}] must be a mapping with at least 'name'", "datasets")
            parsed_datasets.append(Dataset.from_mapping(d, source=f"{source}: datasets[{i}]"))
        training = values.get("training")
        if training is not None and not isinstance(training, Mapping):
            raise InvalidMetadata(f"{source}: 'training' must be a mapping of parameter to value", "training")
        if training is not None:
            try:
                json.dumps(training, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidMetadata(f"{source}: 'training' must hold plain JSON values ({exc})", "training") from None

        def text(key: str) -> str | None:
            v = values.get(key)
            return None if v is None else str(v)

        return cls(
            base=text("base"),
            base_name=text("base_name"),
            base_revision=text("base_revision"),
            quantization=Quantization.parse(values["quantization"]) if values.get("quantization") is not None else None,
            datasets=tuple(parsed_datasets),
            evals=_parse_evals(values.get("evals")),
            training=dict(training) if training is not None else None,
            description=text("description"),
            parent=text("parent"),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> PushMetadata:
        """Read a YAML or JSON metadata file (a regular file of at most 1 MiB, without YAML aliases)."""
        p = Path(path)
        shown = f"metadata file {p}"
        try:
            text = as_text(read_document(p, shown), shown)
            data = load_json(text, shown) if p.suffix.lower() == ".json" else load_yaml(text, shown)
        except DocumentError as exc:
            raise InvalidMetadata(
                f"{exc}; give --meta a YAML or JSON file of at most 1 MiB with keys {', '.join(META_KEYS)}", "meta"
            ) from None
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InvalidMetadata(f"metadata file {p} must hold a mapping with keys {', '.join(META_KEYS)}", "meta")
        return cls.from_mapping(data, source=f"metadata file {p}")

    def overridden_by(self, other: PushMetadata) -> PushMetadata:
        """This metadata with ``other``'s values on top: scalars that ``other`` sets win; datasets
        (by name) and evals (by metric and dataset) from ``other`` replace or add to these."""
        return replace(
            self,
            base=other.base if other.base is not None else self.base,
            base_name=other.base_name if other.base_name is not None else self.base_name,
            allow_unverified_base=other.allow_unverified_base or self.allow_unverified_base,
            base_revision=other.base_revision if other.base_revision is not None else self.base_revision,
            quantization=other.quantization if other.quantization is not None else self.quantization,
            datasets=_merge_by(self.datasets, other.datasets, key=lambda d: d.name),
            evals=_merge_by(self.evals, other.evals, key=lambda e: (e.metric, e.dataset)),
            training={**(self.training or {}), **(other.training or {})} if (self.training or other.training) else None,
            description=other.description if other.description is not None else self.description,
            parent=other.parent if other.parent is not None else self.parent,
        )
