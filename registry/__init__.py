"""adapters: a registry and governance toolkit for PEFT adapters.

Everything a user can do is a method of :class:`Registry`::

    from registry import Registry

    reg = Registry()
    reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B", quantization="nf4")
    reg.pull("support-summarizer:1", "./adapter")
"""

from registry._registry import Registry
from registry.catalog.service import PullResult, PushResult
from registry.domain.compat import Check
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.refs import Ref
from registry.domain.verification import VerificationReport
from registry.domain.versions import BaseModel, EvalRecord, FileEntry, Manifest, VersionInfo, VersionSummary
from registry.errors import (
    AmbiguousReference,
    CheckFailed,
    DestinationExists,
    IntegrityError,
    InvalidAdapter,
    InvalidInput,
    InvalidMetadata,
    InvalidName,
    InvalidReference,
    NotFound,
    RegistryError,
    StorageError,
)
from registry.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AmbiguousReference",
    "BaseModel",
    "Check",
    "CheckFailed",
    "Dataset",
    "DestinationExists",
    "EvalRecord",
    "Evaluation",
    "FileEntry",
    "IntegrityError",
    "InvalidAdapter",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidName",
    "InvalidReference",
    "Manifest",
    "NotFound",
    "PullResult",
    "PushMetadata",
    "PushResult",
    "Quantization",
    "Ref",
    "Registry",
    "RegistryError",
    "Settings",
    "StorageError",
    "VerificationReport",
    "VersionInfo",
    "VersionSummary",
]
