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
import importlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from registry.server.accesslog import AccessLog
from registry.server.errors import error_body, status_of
from registry.server.ratelimit import FailedAuthLimiter
from registry.server.routes._common import API, as_caller, base_url, is_blob_upload

if TYPE_CHECKING:
    from fastapi import FastAPI

    from registry import Registry

__all__ = ["API", "MAX_JSON_BODY", "OPEN_PATHS", "ROUTES", "create_app"]

#: The modules of :mod:`registry.server.routes`, each with a ``routes(app, caller)`` that adds its endpoints.
ROUTES = ("catalog", "governance", "tokens", "people", "users", "transfer", "audit")
#: The endpoints that answer without a token: health, readiness and the API's description.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
#: The largest request body accepted, but for a blob's raw bytes (``PUT /api/v1/blobs/SHA256``, limited
#: per file by ``ADAPTERS_MAX_BLOB_BYTES`` instead).
MAX_JSON_BODY = 1 << 20


def create_app(open_registry: "Callable[[], Registry] | None" = None) -> "FastAPI":
    """The application; ``open_registry`` opens the registry it serves (default: from the environment)."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from registry import ApiToken, Registry, RegistryError, Unauthenticated, __version__
    from registry.server.signing import SignatureRequired

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
        if length is not None and length.isdigit() and int(length) > MAX_JSON_BODY and not is_blob_upload(request):
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

    async def unauthenticated(request: Request) -> JSONResponse | None:
        """The 401 (or 429) a request without a valid token gets before any other error: a caller who is not
        authenticated learns nothing about the API's inputs or routes. None when it is authenticated."""
        if request.url.path in OPEN_PATHS:
            return None
        try:
            await run_in_threadpool(caller, request)
        except RegistryError as exc:
            return await registry_error(request, exc)
        return None

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (no such route, a method not allowed, a body that does not parse) in the
        one error shape, after the token is checked."""
        refused = await unauthenticated(request)
        if refused is not None:
            return refused
        kind = {404: "NotFound", 413: "TooLarge"}.get(exc.status_code, "InvalidInput")
        detail = exc.detail if isinstance(exc.detail, str) else "the request is malformed"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (GET /openapi.json lists them)"
        status = 422 if exc.status_code == 400 else exc.status_code
        headers = dict(exc.headers) if exc.headers else None
        return JSONResponse(error_body(kind, f"{detail}", 1), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = await unauthenticated(request)
        if refused is not None:
            return refused
        problems = []
        for e in exc.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
            problems.append(f"{where or 'the request'}: {e.get('msg', 'invalid')}")
        message = f"the server refused the request: {'; '.join(problems)} (is this client the server's version?)"
        return JSONResponse(error_body("InvalidInput", message, 1), status_code=422)

    @app.exception_handler(SignatureRequired)
    async def sign_this(request: Request, exc: SignatureRequired) -> JSONResponse:
        body = {**error_body("SignatureRequired", str(exc), 1), "sign": exc.payload.decode("utf-8")}
        return JSONResponse(body, status_code=428)

    def caller(request: Request) -> ApiToken:
        """The token a request carries, checked (401 without a valid one)."""
        client = request.client.host if request.client else "?"
        limiter.check(client)
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            limiter.failed(client)
            raise Unauthenticated(
                f"this registry needs a token: run `adapters login {base_url(request)}` (or set ADAPTERS_TOKEN)"
            )
        try:
            token: ApiToken = request.app.state.registry.authenticate(secret.strip())
        except Unauthenticated as exc:
            limiter.failed(client)
            raise Unauthenticated(f"{exc}; run `adapters login {base_url(request)}` with a valid token") from None
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
    def whoami(request: Request, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        """The caller's user, roles and token, and the registry's id and checkpoint key."""
        found = as_caller(request, token).whoami(token)
        return {**found.to_dict(), "registry": base_url(request)}

    for module in ROUTES:
        importlib.import_module(f"registry.server.routes.{module}").routes(app, caller)
    return app
