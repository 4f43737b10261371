"""A registry served by ``adapters serve``, called over HTTP(S) with a token (httpx).

The server's errors come back as the same kinds, messages and exit codes as the embedded
registry raises. This release serves identity (``whoami``), the catalog's reads (``ls``, ``show``),
``users ls``, ``audit log`` and token administration (``tokens create``/``ls``/``revoke``, unsigned); a command the server does
not serve yet says so, naming the way back to the embedded registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import quote

from registry.domain.audit import Event
from registry.domain.tokens import DEFAULT_TOKEN_LIFETIME, ApiToken
from registry.domain.versions import VersionInfo, VersionSummary
from registry.errors import InvalidInput, RegistryError, Unauthenticated
from registry.identity.results import UserInfo
from registry.identity.tokens import CreatedToken, WhoAmI
from registry.remote.credentials import normalise_url

__all__ = ["RemoteError", "RemoteRegistry", "ServerUnreachable"]

API = "/api/v1"
#: The server's hint for an unsigned action under a signing policy (registry.identity.service.Identity.sign).
_SIGN_HINT = "pass --key FILE or set ADAPTERS_KEY to your private key (adapters keys generate)"


class RemoteError(RegistryError):
    """An error the server answered with (its kind, message and exit code)."""

    def __init__(self, kind: str, message: str, exit_code: int, status: int) -> None:
        self.kind = kind
        self.status = status
        super().__init__(message)
        self.exit_code = exit_code


class ServerUnreachable(RegistryError):
    """The registry server did not answer."""


class RemoteRegistry:
    """The registry at ``url``, acting as the user of ``token``."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        self.url = normalise_url(url)
        self._token = token
        self._timeout = timeout
        self._client: Any = None

    def __repr__(self) -> str:
        return f"RemoteRegistry({self.url!r})"

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            verify: Any = os.environ.get("ADAPTERS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True
            self._client = httpx.Client(base_url=self.url, timeout=self._timeout, verify=verify)
        return self._client

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        if self._token is None:
            raise Unauthenticated(f"no token for {self.url}: run `adapters login {self.url}` (or set ADAPTERS_TOKEN)")
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        try:
            response = self._http().request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"the registry server {self.url} did not answer ({type(exc).__name__}: {exc}); check the URL "
                "(ADAPTERS_REGISTRY or --registry) and that `adapters serve` runs there"
            ) from None
        if response.status_code >= 400:
            _raise(response, self.url)
        return response.json()

    def whoami(self) -> WhoAmI:
        """Who the server takes the caller for (the token's user), and the registry's id and key."""
        return WhoAmI.from_dict(self._request("GET", f"{API}/whoami"), registry=self.url)

    def ls(
        self,
        pattern: str | None = None,
        *,
        base: str | None = None,
        peft_type: str | None = None,
        min_rank: int | None = None,
        max_rank: int | None = None,
        quantization: str | None = None,
        latest: bool = False,
        state: str | None = None,
        channel: str | None = None,
        where: Iterable[object] = (),
        tags: Mapping[str, str] | Iterable[str] = (),
    ) -> list[VersionSummary]:
        """As :meth:`registry.Registry.ls`, answered by the server."""
        pairs = [f"{k}={v}" for k, v in tags.items()] if isinstance(tags, Mapping) else list(tags)
        params: dict[str, Any] = {
            "pattern": pattern, "base": base, "peft_type": peft_type, "min_rank": min_rank, "max_rank": max_rank,
            "quantization": quantization, "latest": "true" if latest else None, "state": state, "channel": channel,
            "where": [str(w) for w in where], "tag": pairs,
        }  # fmt: skip
        rows = self._request("GET", f"{API}/versions", params={k: v for k, v in params.items() if v is not None})
        return [VersionSummary.from_dict(r) for r in rows]

    def show(self, ref: object) -> VersionInfo:
        """As :meth:`registry.Registry.show`, answered by the server."""
        return VersionInfo.from_dict(self._request("GET", f"{API}/versions/{quote(str(ref), safe='/:@')}"))

    def create_token(
        self,
        user: str,
        *,
        label: str | None = None,
        expires: str = DEFAULT_TOKEN_LIFETIME,
        role: str | None = None,
        key: object = None,
    ) -> CreatedToken:
        """Issue a token for ``user`` as the caller (admins only; no bootstrap over the API)."""
        _unsigned("tokens create", key)
        body = {"user": user, "label": label, "expires": expires, "role": role}
        d = self._request("POST", f"{API}/tokens", json=body)
        return CreatedToken(secret=str(d["secret"]), token=ApiToken.from_dict(d))

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Tokens, never their secrets: everyone's for an admin, else the caller's own."""
        rows = self._request("GET", f"{API}/tokens", params={"user": user} if user is not None else {})
        return [ApiToken.from_dict(r) for r in rows]

    def revoke_token(self, token_id: str, *, reason: str | None = None, key: object = None) -> ApiToken:
        """Revoke a token at once (its owner, or an admin)."""
        _unsigned("tokens revoke", key)
        path = f"{API}/tokens/{quote(token_id, safe='')}/revoke"
        return ApiToken.from_dict(self._request("POST", path, json={"reason": reason}))

    def users(self, *, include_removed: bool = False) -> list[UserInfo]:
        """The users (removed ones too with ``include_removed``), with their roles and key fingerprints."""
        rows = self._request("GET", f"{API}/users", params={"include_removed": "true"} if include_removed else {})
        return [UserInfo.from_dict(r) for r in rows]

    def audit_log(self, ref: object = None) -> list[Event]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        rows = self._request("GET", f"{API}/audit/events", params={"ref": str(ref)} if ref is not None else {})
        return [Event.from_dict(r) for r in rows]

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("_"):
            raise AttributeError(name)
        raise InvalidInput(
            f"`{name}` is not served by the registry server yet (this release serves whoami, ls, show, users ls, "
            "audit log and tokens create/ls/revoke over the API); run it against the embedded registry on the server host, without "
            "ADAPTERS_REGISTRY / --registry"
        )


def _unsigned(command: str, key: object) -> None:
    """Signing over the API is not served yet: the private key never leaves the client, and the server
    does not yet accept a signature made there, so a key is refused rather than silently not used."""
    if key is not None:
        raise InvalidInput(
            f"`{command} --key` is not served by the registry server yet: signed actions over the API come in a "
            "later release; run it against the embedded registry on the server host, or without --key / ADAPTERS_KEY "
            "where the policy does not require signatures"
        )


def _raise(response: Any, url: str) -> NoReturn:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message") or f"the server {url} answered {response.status_code} {response.reason_phrase}")
    kind = str(body.get("error") or "Error")
    if response.status_code == 401:
        raise Unauthenticated(message)
    if _SIGN_HINT in message:  # the way out the server names is the embedded one: say what works remotely
        message = message.replace(
            _SIGN_HINT,
            "sign it with your key, which the registry server does not take yet: run the command on the server "
            "host, against the embedded registry, with --key FILE",
        )
    exit_code = body.get("exit_code")
    raise RemoteError(kind, message, exit_code if isinstance(exit_code, int) else 1, response.status_code)
