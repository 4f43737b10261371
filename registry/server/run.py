"""Running the server: uvicorn with the application factory, one or more worker processes."""

from __future__ import annotations

import sys

__all__ = ["serve"]


def serve(
    host: str = "127.0.0.1",
    port: int = 8750,
    workers: int = 1,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Serve the registry the environment names (ADAPTERS_DB, ADAPTERS_STORE, ADAPTERS_REGISTRY_KEY) until stopped."""
    import uvicorn

    from registry import Registry
    from registry.errors import InvalidInput

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InvalidInput("give both --ssl-certfile and --ssl-keyfile to serve HTTPS, or neither")
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1 (got {workers})")
    with Registry() as registry:  # fail here, with the registry's own message, rather than in every worker
        registry.check_database()
        registry.ensure_registry_key()
        where = registry.describe()
    scheme = "https" if ssl_certfile else "http"
    print(
        f"adapters serve: the registry in {where['db']} (blobs in {where['store']}) at {scheme}://{host}:{port}, "
        f"{workers} worker{'s' if workers != 1 else ''}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        "registry.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        access_log=False,  # the application writes its own, as JSON lines
        log_level="warning",
        proxy_headers=False,
    )
