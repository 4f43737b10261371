"""Every error the registry raises, under one root.

Each message says what is wrong and what to do next. Errors carry structured
fields so callers (the CLI, a pipeline) can act on them without parsing text.

    RegistryError
    ├── InvalidInput (ValueError)             bad input from the user; nothing was stored
    │   ├── InvalidName                       an adapter or channel name breaks the naming rule
    │   ├── InvalidReference                  a REF string that cannot be parsed
    │   ├── InvalidAdapter                    an adapter directory that cannot be pushed
    │   ├── InvalidMetadata                   a --dataset / --eval / --meta value that is wrong
    │   ├── PolicyError                       a policy file that cannot be used
    │   └── TooLarge                          a blob over the registry server's size limit (HTTP 413)
    ├── NotFound (LookupError)                an adapter, version, channel or base that does not exist
    ├── AmbiguousReference (LookupError)      a digest prefix matching several versions
    ├── DestinationExists (FileExistsError)   an output path that is a non-empty directory, a file or a link
    ├── IntegrityError                        stored bytes or records that do not match their hashes
    │   └── BlobMissing                       a blob a version references is not in the blob store
    ├── StorageError (OSError)                the metadata database or blob store cannot be used
    ├── PermissionDenied                      the actor lacks the role, or could not prove who they are
    ├── InvalidTransition                     the version's lifecycle state does not allow the action
    └── CheckFailed                           a check ran and did not pass (exit code 3)
        └── PolicyNotMet                      the policy in force does not allow the action

The CLI maps ``CheckFailed`` to exit code 3 and every other ``RegistryError`` to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.domain.policy import Policy
    from registry.domain.rules import RuleResult

__all__ = [
    "AmbiguousReference",
    "BlobMissing",
    "CheckFailed",
    "Conflict",
    "DestinationExists",
    "IntegrityError",
    "InvalidAdapter",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidName",
    "InvalidReference",
    "InvalidTransition",
    "NotFound",
    "PermissionDenied",
    "PolicyError",
    "PolicyNotMet",
    "RegistryError",
    "StorageError",
    "TooLarge",
    "Unauthenticated",
]


class RegistryError(Exception):
    """Root of every error raised by the registry."""

    #: Process exit code the CLI uses for this error.
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(RegistryError, ValueError):
    """Input that cannot be accepted. Nothing was stored."""


class InvalidName(InvalidInput):
    """A name that breaks the naming rule."""

    def __init__(self, name: str, kind: str = "adapter", why: str | None = None) -> None:
        self.name = name
        self.kind = kind
        reason = f": {why}" if why else ""
        rule = (
            "lower-case letters and digits, separated by single '.', '_' or '-', "
            "with at most one 'namespace/' prefix (e.g. 'support-summarizer' or 'team/support-summarizer')"
            if kind == "adapter"
            else "lower-case letters and digits, separated by single '.', '_' or '-' (e.g. 'production')"
        )
        article = "an" if kind[0] in "aeiou" else "a"
        super().__init__(f"invalid {kind} name {name!r}{reason}; {article} {kind} name is {rule}")


class InvalidReference(InvalidInput):
    """A reference string that cannot be parsed."""

    def __init__(self, text: str, why: str) -> None:
        self.text = text
        super().__init__(
            f"invalid reference {text!r}: {why}; use NAME (latest), NAME:N, NAME@CHANNEL "
            "or NAME@sha256:PREFIX (at least 12 hex digits)"
        )


class InvalidAdapter(InvalidInput):
    """An adapter directory that cannot be pushed: the message names the file and the fix."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class InvalidMetadata(InvalidInput):
    """A metadata value (dataset spec, eval, meta file, quantization) that is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class PolicyError(InvalidInput):
    """A policy file that cannot be used; the message names the key."""


class TooLarge(InvalidInput):
    """A blob larger than the registry server accepts (``ADAPTERS_MAX_BLOB_BYTES``); nothing was kept."""

    def __init__(self, message: str, size: int | None = None, limit: int | None = None) -> None:
        self.size = size
        self.limit = limit
        super().__init__(message)


class NotFound(RegistryError, LookupError):
    """Something that was asked for does not exist."""

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        version: int | None = None,
    ) -> None:
        self.name = name
        self.version = version
        super().__init__(message)


class AmbiguousReference(RegistryError, LookupError):
    """A digest prefix that matches more than one version."""

    def __init__(self, text: str, candidates: Sequence[str]) -> None:
        self.text = text
        self.candidates = tuple(candidates)
        shown = ", ".join(self.candidates[:5])
        super().__init__(
            f"reference {text!r} matches {len(self.candidates)} versions ({shown}); "
            "give more digits of the digest or use NAME:N"
        )


class DestinationExists(RegistryError, FileExistsError):
    """An output path that cannot be written: ``reason`` says why.

    ``"not-empty"``: a directory that already holds files (``--force`` replaces it);
    ``"file"``: a file where a directory is to be written (never replaced);
    ``"symlink"``: a symbolic link (never written through, never replaced);
    ``"exists"``: another destination that exists (``message`` says which).
    """

    def __init__(
        self, path: str, reason: str = "not-empty", link_target: str | None = None, message: str | None = None
    ) -> None:
        self.path = path
        self.reason = reason
        if message is not None:  # another destination (a checkpoint file, say) says what it is itself
            pass
        elif reason == "file":
            message = (
                f"output path {path} is a file, not a directory; a directory is written there: choose a "
                "directory path (a file is never replaced, not even with --force)"
            )
        elif reason == "symlink":
            message = (
                f"output path {path} is a symbolic link (to {link_target}); the registry does not write through "
                "links: give the real directory instead, or remove the link (a link is never replaced, not even "
                "with --force)"
            )
        else:
            message = f"output directory {path} is not empty; choose another directory or pass --force to replace it"
        super().__init__(message)


class IntegrityError(RegistryError):
    """Stored bytes or records that no longer match their recorded hashes."""

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        version: int | None = None,
        path: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        super().__init__(message)


class BlobMissing(IntegrityError):
    """A blob that was asked for is not in the blob store."""

    def __init__(self, sha256: str, store: str) -> None:
        self.sha256 = sha256
        self.store = store
        super().__init__(f"blob {sha256} is missing from the blob store {store}; restore the store from a backup")


class StorageError(RegistryError, OSError):
    """The metadata database or the blob store cannot be used."""


class CheckFailed(RegistryError):
    """A check ran and did not pass: a policy, a verification, the audit chain."""

    exit_code = 3


class Conflict(RegistryError):
    """The registry changed between reading and writing (another caller got there first); try again."""


class PermissionDenied(RegistryError):
    """The actor lacks the role an action needs, or could not prove who they are."""

    def __init__(self, message: str, actor: str | None = None) -> None:
        self.actor = actor
        super().__init__(message)


class Unauthenticated(PermissionDenied):
    """A server request without a valid token: none, an unknown one, an expired or a revoked one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None)


class InvalidTransition(RegistryError):
    """An action the version's current lifecycle state does not allow.

    ``allowed`` are the actions the state allows; ``hint`` says what to do instead. Raised by
    :func:`registry.domain.lifecycle.next_state`, which knows the table.
    """

    def __init__(self, ref: str, state: str, action: str, allowed: Sequence[str], hint: str, past: str) -> None:
        self.ref, self.state, self.action = ref, state, action
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none"
        reason = f" ({hint})" if hint else ""
        super().__init__(f"{ref} is {state}; it cannot be {past}{reason}. Actions allowed now: {allowed_text}")


class PolicyNotMet(CheckFailed):
    """The policy in force does not allow the action; ``results`` holds every rule's outcome."""

    def __init__(self, action: str, ref: str, policy: Policy, results: Sequence[RuleResult]) -> None:
        self.action, self.ref, self.policy, self.results = action, ref, policy, list(results)
        failed = [r for r in results if not r.passed]
        lines = "".join(f"\n  ✗ {r.rule}: {r.message}" for r in failed)
        super().__init__(
            f"{action} of {ref} refused by policy {policy.name!r} ({policy.digest[:19]}…): "
            f"{len(failed)} rule(s) not met:{lines}"
        )
