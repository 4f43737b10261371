"""adapters: a registry and governance toolkit for PEFT adapters.

Everything a user can do is a method of :class:`Registry`::

    from registry import Registry

    reg = Registry()
    reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B", quantization="nf4")
    reg.pull("support-summarizer:1", "./adapter")
"""

from registry._registry import Registry
from registry.audit.results import AuditReport, AuditVerification, Checkpoint
from registry.catalog.results import ListFilter, PullResult, PushResult
from registry.domain.audit import Event, Finding
from registry.domain.compat import Check
from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
from registry.domain.policy import RuleResult
from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
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
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PolicyError,
    PolicyNotMet,
    RegistryError,
    StorageError,
)
from registry.governance.results import ActionResult, ChannelState, PolicyCheck
from registry.identity import UserInfo
from registry.merge.results import MergedFile, MergeResult
from registry.policies import ActivePolicy
from registry.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ActionResult",
    "ActivePolicy",
    "AmbiguousReference",
    "ApprovalRecord",
    "AuditReport",
    "AuditVerification",
    "BaseModel",
    "ChannelMove",
    "ChannelState",
    "Check",
    "CheckFailed",
    "Checkpoint",
    "Dataset",
    "DestinationExists",
    "EvalRecord",
    "Evaluation",
    "Event",
    "FileEntry",
    "Finding",
    "IntegrityError",
    "InvalidAdapter",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidName",
    "InvalidReference",
    "InvalidTransition",
    "ListFilter",
    "Manifest",
    "MergeResult",
    "MergedFile",
    "NotFound",
    "PermissionDenied",
    "PolicyCheck",
    "PolicyError",
    "PolicyNotMet",
    "PullResult",
    "PushMetadata",
    "PushResult",
    "Quantization",
    "Ref",
    "Registry",
    "RegistryError",
    "RuleResult",
    "Settings",
    "StorageError",
    "TransitionRecord",
    "UserInfo",
    "VerificationReport",
    "VersionInfo",
    "VersionSummary",
]
