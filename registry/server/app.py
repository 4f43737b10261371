"""The ASGI application of ``adapters serve`` (FastAPI, served by uvicorn).

The server holds the database's and the store's credentials (its own ``ADAPTERS_DB``,
``ADAPTERS_STORE``, ``ADAPTERS_REGISTRY_KEY``) and keeps no state of its own: every request is
answered from the database and the store, so several processes on one PostgreSQL and one store
behave as one registry. Every endpoint but ``/healthz``, ``/readyz`` and ``/openapi.json``
requires ``Authorization: Bearer TOKEN``; the actor of a request is the token's user, whatever
the request says.

Errors have one JSON shape, ``{"error": KIND, "message": TEXT, "exit_code": N}``, with the HTTP
status of their kind (:mod:`registry.server.errors`), so a client raises the same error, with the
same message and exit code, as the embedded registry would.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, which name
# classes imported inside create_app (FastAPI is imported only when a server starts).
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from registry.server.accesslog import AccessLog
from registry.server.errors import error_body, status_of
from registry.server.ratelimit import FailedAuthLimiter

if TYPE_CHECKING:
    from fastapi import FastAPI

    from registry import Registry

__all__ = ["API", "MAX_JSON_BODY", "create_app"]

API = "/api/v1"
#: The largest JSON request body accepted (bytes of adapter files travel elsewhere).
MAX_JSON_BODY = 1 << 20


def create_app(open_registry: "Callable[[], Registry] | None" = None) -> "FastAPI":
    """The application; ``open_registry`` opens the registry it serves (default: from the environment)."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse

    from registry import ApiToken, Registry, RegistryError, Unauthenticated, __version__

    def default_registry() -> Registry:
        return Registry()

    opener = open_registry or default_registry
    log = AccessLog()
    limiter = FailedAuthLimiter()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.registry = opener()
        try:
            yield
        finally:
            app.state.registry.close()

    app = FastAPI(
        title="adapters registry",
        version=__version__,
        description="A team registry of PEFT adapters: every rule enforced here, every caller known by a token.",
        docs_url=None,  # the interactive pages load scripts from a CDN; the description is at /openapi.json
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Any]) -> Any:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_JSON_BODY and _is_json(request):
            response = JSONResponse(
                error_body("TooLarge", f"the request body is over the server's limit of {MAX_JSON_BODY} bytes", 1),
                status_code=413,
            )
        else:
            response = await call_next(request)
        log.write(request, response.status_code, time.perf_counter() - started)
        return response

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError) -> JSONResponse:
        status, exit_code = status_of(exc)
        headers = {"WWW-Authenticate": 'Bearer realm="adapters"'} if status == 401 else None
        return JSONResponse(error_body(type(exc).__name__, str(exc), exit_code), status_code=status, headers=headers)

    def caller(request: Request) -> ApiToken:
        """The token a request carries, checked (401 without a valid one)."""
        client = request.client.host if request.client else "?"
        limiter.check(client)
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            limiter.failed(client)
            raise Unauthenticated(
                f"this registry needs a token: run `adapters login {_base_url(request)}` (or set ADAPTERS_TOKEN)"
            )
        try:
            token: ApiToken = request.app.state.registry.authenticate(secret.strip())
        except Unauthenticated as exc:
            limiter.failed(client)
            raise Unauthenticated(f"{exc}; run `adapters login {_base_url(request)}` with a valid token") from None
        request.state.user = token.user
        request.state.token_id = token.id
        return token

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> JSONResponse:
        """The database and the blob store answer."""
        registry: Registry = request.app.state.registry
        checks: dict[str, str] = {}
        for name, probe in (("database", registry.check_database), ("store", registry.check_store)):
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {exc}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503
        )

    @app.get(f"{API}/whoami", tags=["identity"])
    def whoami(request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:  # noqa: B008
        """The caller's user, roles and token, and the registry's id and checkpoint key."""
        found = request.app.state.registry.acting_as(token.user).whoami(token)
        return {**found.to_dict(), "registry": _base_url(request)}

    _catalog_routes(app, caller)
    _token_routes(app, caller)
    _people_routes(app, caller)
    return app


def _catalog_routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """``ls`` and ``show``: the same filters and the same result objects as the embedded registry."""
    from fastapi import Depends, Query, Request

    from registry import ApiToken

    @app.get(f"{API}/versions", tags=["catalog"])
    def list_versions(
        request: Request,
        pattern: str | None = None,
        base: str | None = None,
        peft_type: str | None = None,
        min_rank: int | None = None,
        max_rank: int | None = None,
        quantization: str | None = None,
        latest: bool = False,
        state: str | None = None,
        channel: str | None = None,
        where: list[str] = Query(default=[]),  # noqa: B008
        tag: list[str] = Query(default=[]),  # noqa: B008
        token: ApiToken = Depends(caller),  # noqa: B008
    ) -> list[dict[str, Any]]:
        """One entry per version, filtered as `adapters ls` filters (``where`` and ``tag`` repeat)."""
        rows = request.app.state.registry.acting_as(token.user).ls(
            pattern, base=base, peft_type=peft_type, min_rank=min_rank, max_rank=max_rank,
            quantization=quantization, latest=latest, state=state, channel=channel, where=where, tags=tag,
        )  # fmt: skip
        return [r.to_dict() for r in rows]

    @app.get(f"{API}/versions/{{ref:path}}", tags=["catalog"])
    def show_version(ref: str, request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:  # noqa: B008
        """Every fact of one version (``name:3``, ``name@production``, ``team/name:latest``)."""
        info = request.app.state.registry.acting_as(token.user).show(ref)
        return dict(info.to_dict())


def _token_routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """Token administration, always as the token's user: never the operator's bootstrap, never signed."""
    from fastapi import Body, Depends, Request

    from registry import ApiToken

    @app.post(f"{API}/tokens", tags=["tokens"])
    def create_token(
        request: Request,
        user: str = Body(embed=True),
        label: str | None = Body(default=None, embed=True),
        expires: str = Body(default="90d", embed=True),
        role: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),  # noqa: B008
    ) -> dict[str, Any]:
        """Issue a token for ``user`` (admins only); the secret is in this answer and nowhere else."""
        registry = request.app.state.registry.acting_as(token.user)
        return dict(registry.issue_token(user, label=label, expires=expires, role=role).to_dict())

    @app.get(f"{API}/tokens", tags=["tokens"])
    def list_tokens(
        request: Request,
        user: str | None = None,
        token: ApiToken = Depends(caller),  # noqa: B008
    ) -> list[dict[str, Any]]:
        """Tokens, never their secrets: everyone's for an admin, else the caller's own."""
        return [t.to_dict() for t in request.app.state.registry.acting_as(token.user).tokens(user)]

    @app.post(f"{API}/tokens/{{token_id}}/revoke", tags=["tokens"])
    def revoke_token(
        token_id: str,
        request: Request,
        reason: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),  # noqa: B008
    ) -> dict[str, Any]:
        """Revoke a token at once (its owner, or an admin); another user's token is not found."""
        revoked = request.app.state.registry.acting_as(token.user).revoke_token(token_id, reason=reason)
        return dict(revoked.to_dict())


def _people_routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    """``users ls`` and ``audit log``: who may act here, and what they did."""
    from fastapi import Depends, Request

    from registry import ApiToken

    @app.get(f"{API}/users", tags=["users"])
    def list_users(
        request: Request,
        include_removed: bool = False,
        token: ApiToken = Depends(caller),  # noqa: B008
    ) -> list[dict[str, Any]]:
        """The users (removed ones too with ``include_removed``)."""
        users = request.app.state.registry.acting_as(token.user).users(include_removed=include_removed)
        return [u.to_dict() for u in users]

    @app.get(f"{API}/audit/events", tags=["audit"])
    def audit_events(
        request: Request,
        ref: str | None = None,
        token: ApiToken = Depends(caller),  # noqa: B008
    ) -> list[dict[str, Any]]:
        """Audit events in order; ``ref`` (a name or name:N) narrows them to one adapter or version."""
        return [e.to_dict() for e in request.app.state.registry.acting_as(token.user).audit_log(ref)]


def _is_json(request: Any) -> bool:
    return str(request.headers.get("content-type", "")).split(";")[0].strip() == "application/json"


def _base_url(request: Any) -> str:
    return str(request.base_url).rstrip("/")
