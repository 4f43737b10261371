"""A registry served by ``adapters serve``, called over HTTP(S) with a token (httpx).

The server's errors come back as the same kinds, messages and exit codes as the embedded
registry raises. Each concept's calls live in :mod:`registry.remote.calls`; a command the server
does not serve yet says so, naming the way back to the embedded registry.
"""

from __future__ import annotations

from typing import NoReturn

from registry.errors import InvalidInput
from registry.remote._http import RemoteBase, RemoteError, ServerUnreachable
from registry.remote.calls.audit import AuditCalls
from registry.remote.calls.catalog import CatalogCalls
from registry.remote.calls.checks import CheckCalls
from registry.remote.calls.governance import GovernanceCalls
from registry.remote.calls.people import PeopleCalls
from registry.remote.calls.tokens import TokenCalls
from registry.remote.calls.transfer import TransferCalls
from registry.remote.calls.users import UserCalls

__all__ = ["RemoteError", "RemoteRegistry", "ServerUnreachable"]


class RemoteRegistry(
    CheckCalls, CatalogCalls, TransferCalls, GovernanceCalls, TokenCalls, PeopleCalls, UserCalls, AuditCalls, RemoteBase
):
    """The registry at ``url``, acting as the user of ``token``: the same methods as :class:`registry.Registry`."""

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("_"):
            raise AttributeError(name)
        raise InvalidInput(
            f"`{name}` is not served by the registry server yet (this release serves whoami, push, pull, ls, show, "
            "verify and merge, the lifecycle, channels, policies, evals, tags, notes, users, the audit log (log, "
            "checkpoint, verify, report) and tokens over the API); run it against the embedded registry on the server host, without "
            "ADAPTERS_REGISTRY / --registry"
        )
