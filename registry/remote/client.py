"""A registry served by ``adapters serve``, called over HTTP(S) with a token (httpx).

The server's errors come back as the same kinds, messages and exit codes as the embedded
registry raises. This release serves identity (``whoami``); a command the server does not serve
yet says so, naming the way back to the embedded registry.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from registry.errors import InvalidInput, RegistryError, Unauthenticated
from registry.identity.tokens import WhoAmI
from registry.remote.credentials import normalise_url

__all__ = ["RemoteError", "RemoteRegistry", "ServerUnreachable"]

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

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("_"):
            raise AttributeError(name)
        raise InvalidInput(
            f"`{name}` is not served by the registry server yet (this release serves whoami over the API); run it "
            "against the embedded registry on the server host, without ADAPTERS_REGISTRY / --registry"
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
    exit_code = body.get("exit_code")
    raise RemoteError(kind, message, exit_code if isinstance(exit_code, int) else 1, response.status_code)
