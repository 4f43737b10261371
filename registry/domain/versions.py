"""A version's manifest and the records shown about it.

The manifest is everything known about a version when it is pushed: its identity,
files (path -> sha256), adapter facts, base, quantization, lineage. Its canonical
JSON is stored verbatim and its sha256 is the version's digest, so the digest pins
the bytes *and* the facts: a later edit of either is detectable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.domain.adapterdir import PeftFacts
from registry.domain.annotations import NoteRecord, TagChange
from registry.domain.canonical import canonical_json, sha256_digest
from registry.domain.lineage import Dataset, Quantization
from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
from registry.domain.verification import VerificationReport
from registry.errors import IntegrityError

__all__ = [
    "MANIFEST_SCHEMA",
    "BaseModel",
    "EvalRecord",
    "FileEntry",
    "Manifest",
    "ParentRef",
    "VersionInfo",
    "VersionSummary",
]

MANIFEST_SCHEMA = "adapters.manifest/v1"


@dataclass(frozen=True)
class FileEntry:
    """One stored file of a version."""

    path: str
    sha256: str  # hex, no prefix
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class BaseModel:
    """The base model an adapter was trained on, identified by content where possible.

    ``name`` is its identity (a Hugging Face id where one is known, else the directory's path) and
    ``path`` the local directory it was read from, if one was given. ``source`` says how the
    fingerprint was obtained: ``local`` (a directory), ``hf-cache`` (the local Hugging Face cache)
    or ``unresolved`` (recorded by name only). ``weights`` lists the ``(path, sha256)`` of the
    weight files the fingerprint was computed over, so a different base can be told file by file;
    ``unverified`` says the base directory held no weight files and the push was allowed anyway.

    ``path``, ``weights`` and ``unverified`` were added after the first release: a manifest
    without them is read as it is, and written back byte for byte (its digest unchanged), because
    they are only written when they are set.
    """

    name: str | None = None
    revision: str | None = None
    fingerprint: str | None = None
    source: str | None = None
    files: int | None = None
    path: str | None = None
    weights: tuple[tuple[str, str], ...] | None = None
    unverified: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "files": self.files,
        }
        if self.path is not None:
            d["path"] = self.path
        if self.weights is not None:
            d["weights"] = [{"path": p, "sha256": sha} for p, sha in self.weights]
        if self.unverified:
            d["unverified"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaseModel:
        weights = d.get("weights")
        return cls(
            name=d.get("name"),
            revision=d.get("revision"),
            fingerprint=d.get("fingerprint"),
            source=d.get("source"),
            files=d.get("files"),
            path=d.get("path"),
            weights=tuple((w["path"], w["sha256"]) for w in weights) if weights is not None else None,
            unverified=bool(d.get("unverified", False)),
        )


@dataclass(frozen=True)
class ParentRef:
    """The version this one was derived from."""

    name: str
    version: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}


@dataclass(frozen=True)
class Manifest:
    """The immutable description of a version."""

    name: str
    version: int
    created_at: str
    created_by: str
    files: tuple[FileEntry, ...]
    peft: PeftFacts
    base: BaseModel
    quantization: Quantization
    datasets: tuple[Dataset, ...] = ()
    training: Mapping[str, Any] | None = None
    description: str | None = None
    parent: ParentRef | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "description": self.description,
            "files": [f.to_dict() for f in self.files],
            "peft": self.peft.to_dict(),
            "base": self.base.to_dict(),
            "quantization": self.quantization.to_dict(),
            "datasets": [d.to_dict() for d in self.datasets],
            "training": dict(self.training) if self.training is not None else None,
            "parent": self.parent.to_dict() if self.parent else None,
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        return sha256_digest(self.canonical())

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        d = json.loads(text)
        if d.get("schema") != MANIFEST_SCHEMA:
            raise IntegrityError(
                f"version {d.get('name')}:{d.get('version')} has a manifest of unknown schema {d.get('schema')!r}: "
                "it was written by a newer release (pip install -U adapter-registry) or the record was altered"
            )
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """The manifest of :meth:`to_dict` (its schema checked by :meth:`from_json`)."""
        return cls(
            name=d["name"],
            version=d["version"],
            created_at=d["created_at"],
            created_by=d["created_by"],
            description=d.get("description"),
            files=tuple(FileEntry(**f) for f in d["files"]),
            peft=PeftFacts.from_dict(d["peft"]),
            base=BaseModel.from_dict(d["base"]),
            quantization=Quantization.parse(d["quantization"]),
            datasets=tuple(Dataset.from_mapping(x) for x in d.get("datasets") or []),
            training=d.get("training"),
            parent=ParentRef(**d["parent"]) if d.get("parent") else None,
        )


@dataclass(frozen=True)
class EvalRecord:
    """An evaluation result as recorded: appended, never edited."""

    metric: str
    value: float
    dataset: str | None
    recorded_at: str
    recorded_by: str
    source: str  # "push" or "eval add"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "dataset": self.dataset,
            "recorded_at": self.recorded_at,
            "recorded_by": self.recorded_by,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalRecord:
        return cls(d["metric"], d["value"], d.get("dataset"), d["recorded_at"], d["recorded_by"], d["source"])


@dataclass(frozen=True)
class VersionSummary:
    """One row of ``adapters ls``."""

    name: str
    version: int
    digest: str
    state: str
    created_at: str
    created_by: str
    peft_type: str
    r: int | None
    base: str | None
    base_fingerprint: str | None
    quantization: str
    size: int
    channels: tuple[str, ...] = ()  # channels that point to this version now
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "state": self.state,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "peft_type": self.peft_type,
            "r": self.r,
            "base": self.base,
            "base_fingerprint": self.base_fingerprint,
            "quantization": self.quantization,
            "size": self.size,
            "channels": list(self.channels),
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VersionSummary:
        """The row of :meth:`to_dict` (a server's answer to ``ls``)."""
        return cls(
            name=d["name"], version=d["version"], digest=d["digest"], state=d["state"],
            created_at=d["created_at"], created_by=d["created_by"], peft_type=d["peft_type"], r=d.get("r"),
            base=d.get("base"), base_fingerprint=d.get("base_fingerprint"), quantization=d["quantization"],
            size=d["size"], channels=tuple(d.get("channels") or ()), tags=dict(d.get("tags") or {}),
        )  # fmt: skip


@dataclass(frozen=True)
class VersionInfo:
    """Every fact of one version, as ``adapters show`` prints it."""

    manifest: Manifest
    digest: str
    state: str
    evals: tuple[EvalRecord, ...] = ()
    verifications: tuple[VerificationReport, ...] = ()
    approvals: tuple[ApprovalRecord, ...] = ()
    history: tuple[TransitionRecord, ...] = ()
    channels: tuple[str, ...] = ()  # channels that point to this version now
    releases: tuple[ChannelMove, ...] = ()  # every release or rollback that pointed a channel here
    tags: Mapping[str, str] = field(default_factory=dict)  # set after push (``adapters tag``)
    tag_history: tuple[TagChange, ...] = ()
    notes: tuple[NoteRecord, ...] = ()  # appended after push (``adapters note``)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest.to_dict()
        m.pop("schema")
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "state": self.state,
            **{k: v for k, v in m.items() if k not in ("name", "version")},
            "size": self.manifest.size,
            "evals": [e.to_dict() for e in self.evals],
            "verifications": [v.to_dict() for v in self.verifications],
            "approvals": [a.to_dict() for a in self.approvals],
            "history": [t.to_dict() for t in self.history],
            "channels": list(self.channels),
            "releases": [m.to_dict() for m in self.releases],
            "tags": dict(self.tags),
            "tag_history": [t.to_dict() for t in self.tag_history],
            "notes": [n.to_dict() for n in self.notes],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VersionInfo:
        """The facts of :meth:`to_dict` (a server's answer to ``show``): the manifest is rebuilt from the
        flattened keys, so ``from_dict(info.to_dict()) == info``."""
        return cls(
            manifest=Manifest.from_dict(d),
            digest=d["digest"],
            state=d["state"],
            evals=tuple(EvalRecord.from_dict(e) for e in d.get("evals") or ()),
            verifications=tuple(VerificationReport.from_dict(v) for v in d.get("verifications") or ()),
            approvals=tuple(ApprovalRecord.from_dict(a) for a in d.get("approvals") or ()),
            history=tuple(TransitionRecord.from_dict(t) for t in d.get("history") or ()),
            channels=tuple(d.get("channels") or ()),
            releases=tuple(ChannelMove.from_dict(m) for m in d.get("releases") or ()),
            tags=dict(d.get("tags") or {}),
            tag_history=tuple(TagChange.from_dict(t) for t in d.get("tag_history") or ()),
            notes=tuple(NoteRecord.from_dict(n) for n in d.get("notes") or ()),
        )
