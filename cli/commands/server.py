"""serve, login, logout, whoami: a team registry's server, and this CLI as its client."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cli._context import json_option, output
from cli._output import stderr_console

if TYPE_CHECKING:
    from registry import WhoAmI

__all__ = ["login", "logout", "serve", "whoami"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8750, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes (stateless: any number).")
@click.option("--ssl-certfile", type=click.Path(dir_okay=False, exists=True), help="TLS certificate (PEM).")
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False, exists=True), help="TLS private key (PEM).")
def serve(host: str, port: int, workers: int, ssl_certfile: str | None, ssl_keyfile: str | None) -> None:
    """Serve this registry to a team: its database and store (ADAPTERS_DB, ADAPTERS_STORE) stay here,
    callers authenticate with tokens (`adapters tokens create`). Health: /healthz, /readyz; API: /openapi.json.
    """
    from registry import serve as run

    run(host=host, port=port, workers=workers, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


@click.command()
@click.argument("url")
@click.option("--token-stdin", is_flag=True, help="Read the token from stdin (for scripts); else it is asked for.")
@click.option("--accept-new-registry-key", is_flag=True, help="Accept a registry key other than the one pinned.")
@json_option
@click.pass_context
def login(ctx: click.Context, url: str, token_stdin: bool, accept_new_registry_key: bool, as_json: bool) -> None:
    """Log in to the registry server at URL with a token (stored with mode 0600), pinning its registry key."""
    from registry import Settings
    from registry import login as do_login

    token = sys.stdin.readline() if token_stdin else click.prompt("token", hide_input=True, err=True)
    config = Settings.from_env(ctx.find_root().obj.home).config_dir
    found = do_login(url, token, config, accept_new_registry_key)
    if as_json:
        output(True).result({k: v for k, v in found.__dict__.items() if k != "token"}, lambda _: None)
        return
    print(f"logged in to {found.url} as {found.user} (token {found.token_id})")
    stderr_console().print(
        f"registry {found.registry_id}, checkpoint key {found.registry_key or '(none yet)'}: pinned; a later "
        "login that finds another key is refused",
        highlight=False,
    )


@click.command()
@click.argument("url", required=False)
@click.pass_context
def logout(ctx: click.Context, url: str | None) -> None:
    """Forget the token stored for URL (default: ADAPTERS_REGISTRY / --registry)."""
    from registry import InvalidInput, Settings
    from registry import logout as do_logout

    root = ctx.find_root().obj
    target = url or root.registry_url
    if not target:
        raise InvalidInput("which registry? give its URL: `adapters logout https://adapters.internal:8750`")
    if do_logout(target, Settings.from_env(root.home).config_dir):
        print(f"logged out of {target}")
    else:
        print(f"no token was stored for {target}")


@click.command()
@json_option
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Who the registry takes you for: user, roles, token, the registry and its checkpoint key."""
    from cli._context import registry

    output(as_json).result(registry(ctx).whoami(), _render_whoami)


def _render_whoami(me: WhoAmI) -> None:
    print(f"{me.user} ({', '.join(me.roles) or 'no role'})")
    print(f"  registry: {me.registry} ({me.registry_id})")
    print(f"  registry key: {me.registry_key or '(none yet)'}")
    if me.token is not None:
        print(f"  token: {me.token.id}, expires {me.token.expires_at}")
