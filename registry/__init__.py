"""adapters: a registry and governance toolkit for PEFT adapters.

Everything a user can do is a method of :class:`Registry`::

    from registry import Registry

    reg = Registry()
    reg.push("./out", name="support-summarizer", base="meta-llama/Llama-3.1-8B", quantization="nf4")
    reg.pull("support-summarizer:1", "./adapter")
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from registry._quiet import quiet_libraries
    from registry._registry import Registry
    from registry.audit.export import AuditExport
    from registry.audit.results import AuditReport, AuditVerification, Checkpoint
    from registry.audit.trust import TrustAnchor
    from registry.catalog.results import Annotated, ListFilter, MetricCondition, PullResult, PushResult
    from registry.domain.actor import Actor
    from registry.domain.annotations import NoteRecord, TagChange
    from registry.domain.audit import Event, Finding
    from registry.domain.compat import Check
    from registry.domain.lineage import Dataset, Evaluation, PushMetadata, Quantization
    from registry.domain.records import ApprovalRecord, ChannelMove, TransitionRecord
    from registry.domain.refs import Ref
    from registry.domain.rules import RuleResult
    from registry.domain.tokens import ApiToken, CreatedToken, WhoAmI
    from registry.domain.verification import VerificationReport
    from registry.domain.versions import BaseModel, EvalRecord, FileEntry, Manifest, VersionInfo, VersionSummary
    from registry.errors import (
        AmbiguousReference,
        BlobMissing,
        CheckFailed,
        Conflict,
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
        Unauthenticated,
    )
    from registry.governance.results import ActionResult, ChannelState, PolicyCheck
    from registry.identity import GrantInfo, KeyInfo, UserDetail, UserInfo
    from registry.maintenance.results import (
        BlobProblem,
        BlobUse,
        FsckResult,
        GcResult,
        RemovedBlob,
        RemovedUpload,
        VersionProblem,
    )
    from registry.merge.results import MergedFile, MergeResult
    from registry.policies import ActivePolicy
    from registry.remote.client import RemoteError, RemoteRegistry, ServerUnreachable
    from registry.remote.credentials import Credentials, Login
    from registry.remote.login import login, logout
    from registry.server.run import serve
    from registry.settings import Settings
    from registry.storage.blobs import BlobStore, open_blob_store

__version__ = "0.1.0"

#: Where each public name lives. They are imported on first use (PEP 562), so that
#: ``import registry.types`` (the CLI's option choices) does not load the whole library.
_LOCATIONS = {
    "TrustAnchor": "registry.audit.trust",
    "BlobMissing": "registry.errors",
    "Actor": "registry.domain.actor",
    "BlobStore": "registry.storage.blobs",
    "open_blob_store": "registry.storage.blobs",
    "quiet_libraries": "registry._quiet",
    "ActionResult": "registry.governance.results",
    "ActivePolicy": "registry.policies",
    "AmbiguousReference": "registry.errors",
    "ApprovalRecord": "registry.domain.records",
    "AuditExport": "registry.audit.export",
    "AuditReport": "registry.audit.results",
    "AuditVerification": "registry.audit.results",
    "BaseModel": "registry.domain.versions",
    "ChannelMove": "registry.domain.records",
    "ChannelState": "registry.governance.results",
    "Check": "registry.domain.compat",
    "CheckFailed": "registry.errors",
    "Conflict": "registry.errors",
    "Checkpoint": "registry.audit.results",
    "Dataset": "registry.domain.lineage",
    "DestinationExists": "registry.errors",
    "EvalRecord": "registry.domain.versions",
    "Evaluation": "registry.domain.lineage",
    "Event": "registry.domain.audit",
    "FileEntry": "registry.domain.versions",
    "Finding": "registry.domain.audit",
    "IntegrityError": "registry.errors",
    "InvalidAdapter": "registry.errors",
    "InvalidInput": "registry.errors",
    "InvalidMetadata": "registry.errors",
    "InvalidName": "registry.errors",
    "InvalidReference": "registry.errors",
    "InvalidTransition": "registry.errors",
    "ListFilter": "registry.catalog.results",
    "Manifest": "registry.domain.versions",
    "MergeResult": "registry.merge.results",
    "MergedFile": "registry.merge.results",
    "NotFound": "registry.errors",
    "PermissionDenied": "registry.errors",
    "PolicyCheck": "registry.governance.results",
    "PolicyError": "registry.errors",
    "PolicyNotMet": "registry.errors",
    "PullResult": "registry.catalog.results",
    "PushMetadata": "registry.domain.lineage",
    "PushResult": "registry.catalog.results",
    "Quantization": "registry.domain.lineage",
    "Ref": "registry.domain.refs",
    "Registry": "registry._registry",
    "RegistryError": "registry.errors",
    "RuleResult": "registry.domain.rules",
    "Settings": "registry.settings",
    "StorageError": "registry.errors",
    "TransitionRecord": "registry.domain.records",
    "UserInfo": "registry.identity",
    "UserDetail": "registry.identity",
    "GrantInfo": "registry.identity",
    "KeyInfo": "registry.identity",
    "Annotated": "registry.catalog.results",
    "MetricCondition": "registry.catalog.results",
    "NoteRecord": "registry.domain.annotations",
    "TagChange": "registry.domain.annotations",
    "VerificationReport": "registry.domain.verification",
    "VersionInfo": "registry.domain.versions",
    "VersionSummary": "registry.domain.versions",
    "BlobProblem": "registry.maintenance.results",
    "BlobUse": "registry.maintenance.results",
    "FsckResult": "registry.maintenance.results",
    "GcResult": "registry.maintenance.results",
    "RemovedBlob": "registry.maintenance.results",
    "RemovedUpload": "registry.maintenance.results",
    "VersionProblem": "registry.maintenance.results",
    "ApiToken": "registry.domain.tokens",
    "WhoAmI": "registry.domain.tokens",
    "RemoteRegistry": "registry.remote.client",
    "RemoteError": "registry.remote.client",
    "ServerUnreachable": "registry.remote.client",
    "Credentials": "registry.remote.credentials",
    "Login": "registry.remote.credentials",
    "login": "registry.remote.login",
    "logout": "registry.remote.login",
    "serve": "registry.server.run",
    "CreatedToken": "registry.domain.tokens",
    "Unauthenticated": "registry.errors",
}

__all__ = [
    "ActionResult",
    "ActivePolicy",
    "Actor",
    "AmbiguousReference",
    "Annotated",
    "ApiToken",
    "ApprovalRecord",
    "AuditExport",
    "AuditReport",
    "AuditVerification",
    "BaseModel",
    "BlobMissing",
    "BlobProblem",
    "BlobStore",
    "BlobUse",
    "ChannelMove",
    "ChannelState",
    "Check",
    "CheckFailed",
    "Checkpoint",
    "Conflict",
    "CreatedToken",
    "Credentials",
    "Dataset",
    "DestinationExists",
    "EvalRecord",
    "Evaluation",
    "Event",
    "FileEntry",
    "Finding",
    "FsckResult",
    "GcResult",
    "GrantInfo",
    "IntegrityError",
    "InvalidAdapter",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidName",
    "InvalidReference",
    "InvalidTransition",
    "KeyInfo",
    "ListFilter",
    "Login",
    "Manifest",
    "MergeResult",
    "MergedFile",
    "MetricCondition",
    "NotFound",
    "NoteRecord",
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
    "RemoteError",
    "RemoteRegistry",
    "RemovedBlob",
    "RemovedUpload",
    "RuleResult",
    "ServerUnreachable",
    "Settings",
    "StorageError",
    "TagChange",
    "TransitionRecord",
    "TrustAnchor",
    "Unauthenticated",
    "UserDetail",
    "UserInfo",
    "VerificationReport",
    "VersionInfo",
    "VersionProblem",
    "VersionSummary",
    "WhoAmI",
    "login",
    "logout",
    "open_blob_store",
    "quiet_libraries",
    "serve",
]


def __getattr__(name: str) -> object:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
