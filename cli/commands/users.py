"""users and keys: who may act, and the keys that prove it."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, output, registry
from cli._render import render_keypair, render_user, render_users

__all__ = ["keys", "users"]


@click.group()
def users() -> None:
    """Users and their roles (admin, author, reviewer, risk, release-manager, auditor)."""


@users.command(name="add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role to grant. Repeatable.")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Their Ed25519 public key (.pub).",
)
@json_option
@click.pass_context
def users_add(ctx: click.Context, name: str, roles: tuple[str, ...], public_key: Path | None, as_json: bool) -> None:
    """Register NAME, grant roles, register a public key (admins only; the first user is the admin)."""
    output(as_json).result(registry(ctx).add_user(name, roles=roles, public_key=public_key), render_user)


@users.command(name="ls")
@json_option
@click.pass_context
def users_ls(ctx: click.Context, as_json: bool) -> None:
    """List users with their roles and key fingerprints."""
    output(as_json).result(registry(ctx).users(), render_users)


@click.group()
def keys() -> None:
    """Ed25519 signing keys."""


@keys.command(name="generate")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Directory (default: $ADAPTERS_HOME/keys)."
)
@click.option("--name", help="File name stem (default: your user name).")
@json_option
@click.pass_context
def keys_generate(ctx: click.Context, out: Path | None, name: str | None, as_json: bool) -> None:
    """Create an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    from registry import Registry, Settings

    settings = Settings.from_env(ctx.find_root().obj.home)
    result = Registry.generate_key(out or settings.home / "keys", name or settings.user)
    output(as_json).result(result, lambda r: render_keypair(r, name or settings.user))
