"""The HTTP side of the client: one httpx client, the token, and the server's errors raised as ours."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from registry.domain.tokens import WhoAmI
from registry.errors import RegistryError, Unauthenticated
from registry.remote.credentials import normalise_url

if TYPE_CHECKING:
    from registry.settings import Settings

__all__ = ["API", "RemoteBase", "RemoteError", "ServerUnreachable"]

API = "/api/v1"


class RemoteError(RegistryError):
    """An error the server answered with (its kind, message and exit code)."""

    def __init__(self, kind: str, message: str, exit_code: int, status: int) -> None:
        self.kind = kind
        self.status = status
        super().__init__(message)
        self.exit_code = exit_code


class ServerUnreachable(RegistryError):
    """The registry server did not answer."""


_R = TypeVar("_R", bound="RemoteBase")


class _SignHere(Exception):
    """The server's answer to a prepare request: the payload to sign."""

    def __init__(self, payload: bytes) -> None:
        super().__init__("sign this payload")
        self.payload = payload


class RemoteBase:
    """The registry at ``url``, acting as the user of ``token``: the connection every call uses."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0, *, settings: Settings | None = None) -> None:
        """``settings``: this machine's (its state and config directories hold what the client trusts:
        checkpoints, trust files, the registry key pinned at login); default: from the environment."""
        self.url = normalise_url(url)
        self._token = token
        self._timeout = timeout
        self._settings = settings
        self._client: Any = None

    def __repr__(self) -> str:
        return f"RemoteRegistry({self.url!r})"

    def __enter__(self: _R) -> _R:
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

    def _auth(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        if self._token is None:
            raise Unauthenticated(f"no token for {self.url}: run `adapters login {self.url}` (or set ADAPTERS_TOKEN)")
        return {"Authorization": f"Bearer {self._token}", **(headers or {})}

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        return ServerUnreachable(
            f"the registry server {self.url} did not answer ({type(exc).__name__}: {exc}); check the URL "
            "(ADAPTERS_REGISTRY or --registry) and that `adapters serve` runs there"
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        headers = self._auth(kwargs.pop("headers", {}))
        try:
            response = self._http().request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            _raise(response, self.url)
        return response.json()

    @contextlib.contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """A response whose body is read in chunks (``iter_bytes``), the server's errors raised as ours."""
        import httpx

        headers = self._auth(kwargs.pop("headers", {}))
        try:
            with self._http().stream(method, path, headers=headers, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise(response, self.url)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _key_signer(self, key: object) -> Any:
        """The user's own key (``--key``, else ``ADAPTERS_KEY``), or None: it signs here and never travels."""
        from registry.domain.signing import KeyFileSigner

        path = key if key is not None else os.environ.get("ADAPTERS_KEY") or None
        return KeyFileSigner(str(path)) if path is not None else None

    def _signed(
        self, method: str, path: str, key: object, action: str | tuple[str, ...], subject: str | None, **kwargs: Any
    ) -> Any:
        """An action the caller signs, when they have a key (registry.server.signing: prepare, sign, send).

        The client signs only a payload that names the action it asked for, on the subject it named;
        the server checks the rest (the actor is the token's user, the key the one an admin
        registered). Fields that changed between the two requests are signed again, twice at most.
        """
        import base64

        from registry.server.signing import KEY_SOURCE_HEADER, PAYLOAD_HEADER, PREPARE_HEADER, SIGNATURE_HEADER

        signer = self._key_signer(key)
        if signer is None:
            return self._request(method, path, **kwargs)
        for attempt in range(3):
            try:
                prepare = {PREPARE_HEADER: "prepare", KEY_SOURCE_HEADER: _header_text(signer.source)}
                return self._request(method, path, headers=prepare, **kwargs)
            except _SignHere as asked:
                payload = asked.payload
            fields = json.loads(payload)
            named = fields.get("ref", fields.get("subject"))
            about = None if named is None else str(named)
            actions = (action,) if isinstance(action, str) else action
            if fields.get("action") not in actions or not (
                subject is None or about is None or subject in (about, about.rsplit(":", 1)[0])
            ):
                raise RegistryError(
                    f"the server {self.url} asked to sign {fields.get('action')!r} on {named!r}, not {action!r} on "
                    f"{subject!r}; nothing was signed"
                )
            headers = {
                PAYLOAD_HEADER: base64.b64encode(payload).decode("ascii"),
                SIGNATURE_HEADER: signer.sign(payload),
                KEY_SOURCE_HEADER: _header_text(signer.source),
            }
            try:
                return self._request(method, path, headers=headers, **kwargs)
            except RemoteError as exc:
                if exc.kind != "SignatureStale" or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def whoami(self) -> WhoAmI:
        """Who the server takes the caller for (the token's user), and the registry's id and key."""
        return WhoAmI.from_dict(self._request("GET", f"{API}/whoami"), registry=self.url)


def _raise(response: Any, url: str) -> NoReturn:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message") or f"the server {url} answered {response.status_code} {response.reason_phrase}")
    kind = str(body.get("error") or "Error")
    if response.status_code == 401:
        raise Unauthenticated(message)
    if response.status_code == 428 and isinstance(body.get("sign"), str):
        raise _SignHere(body["sign"].encode("utf-8"))
    exit_code = body.get("exit_code")
    raise RemoteError(kind, message, exit_code if isinstance(exit_code, int) else 1, response.status_code)


def _header_text(text: str) -> str:
    """``text`` as a header value can carry it (printable ASCII), for the server's messages only."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:200]
