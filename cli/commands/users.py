"""users and keys: who may act, and the keys that prove it."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, out_option, output, registry
from cli._render import render_keypair, render_trust, render_user, render_users
from cli._render_people import render_user_detail

__all__ = ["init", "keys", "users"]


@click.group()
def users() -> None:
    """Users and their roles (admin, author, reviewer, risk, release-manager, auditor)."""


@users.command(name="add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role to grant. Repeatable.")
@click.option(
    "--namespace",
    help="Grant the roles for this namespace only (NAMESPACE/* adapters); the others stay invisible to NAME. "
    "Not for admin. One per command: run it again for another namespace.",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Their Ed25519 public key (.pub).",
)
@key_option
@json_option
@click.pass_context
def users_add(
    ctx: click.Context,
    name: str,
    roles: tuple[str, ...],
    namespace: str | None,
    public_key: Path | None,
    key: Path | None,
    as_json: bool,
) -> None:
    """Register NAME, grant roles, register a public key (admins only; the first user is the admin).

    With --namespace NS the roles are for NS/* adapters only: `users add bob --role reviewer --namespace credit`
    lets bob review credit/* and nothing else, and adapters of other namespaces do not exist for him.

    Giving a user who has a key a new --public-key rotates it: the new key signs from now on, and what the
    old key signed stays verifiable.
    """
    result = registry(ctx).add_user(name, roles=roles, namespace=namespace, public_key=public_key, key=key)
    output(as_json).result(result, render_user)


@users.command(name="ls")
@click.option("--all", "include_removed", is_flag=True, help="Include removed users.")
@json_option
@click.pass_context
def users_ls(ctx: click.Context, include_removed: bool, as_json: bool) -> None:
    """List users with their roles and key fingerprints."""
    output(as_json).result(registry(ctx).users(include_removed=include_removed), render_users)


@users.command(name="show")
@click.argument("name")
@json_option
@click.pass_context
def users_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show NAME with the history of their role grants and keys."""
    output(as_json).result(registry(ctx).user_detail(name), render_user_detail)


@users.command(name="remove")
@click.argument("name")
@click.option("--reason", help="Why (recorded in the audit log).")
@key_option
@json_option
@click.pass_context
def users_remove(ctx: click.Context, name: str, reason: str | None, key: Path | None, as_json: bool) -> None:
    """Remove NAME: they can no longer act; their history stays and their signatures still verify (admins only)."""
    output(as_json).result(registry(ctx).remove_user(name, reason=reason, key=key), render_user)


@users.command(name="revoke-role")
@click.argument("name")
@click.argument("role")
@click.option("--namespace", help="Withdraw the grant for this namespace (default: the grant for the whole registry).")
@click.option("--reason", help="Why (recorded in the audit log).")
@key_option
@json_option
@click.pass_context
def users_revoke_role(
    ctx: click.Context,
    name: str,
    role: str,
    namespace: str | None,
    reason: str | None,
    key: Path | None,
    as_json: bool,
) -> None:
    """Withdraw ROLE from NAME; the grant stays in the history (admins only)."""
    result = registry(ctx).revoke_role(name, role, namespace=namespace, reason=reason, key=key)
    output(as_json).result(result, render_user)


@click.group()
def keys() -> None:
    """Ed25519 signing keys."""


@keys.command(name="generate")
@out_option("Directory (default: $ADAPTERS_HOME/keys).", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="File name stem (default: your user name).")
@json_option
@click.pass_context
def keys_generate(ctx: click.Context, out: Path | None, name: str | None, as_json: bool) -> None:
    """Create an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    from registry import Registry, Settings

    settings = Settings.from_env(ctx.find_root().obj.home)
    result = Registry.generate_key(out or settings.home / "keys", name or settings.user)
    output(as_json).result(result, lambda r: render_keypair(r, name or settings.user))


@click.command()
@click.option("--admin", required=True, help="The registry's admin (created on a new registry; an existing admin).")
@click.option(
    "--public-key",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The admin's Ed25519 public key (.pub): the root every later signed action is checked against.",
)
@click.option(
    "--trust-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the trust file (default: $ADAPTERS_CONFIG_DIR/trust/REGISTRY-ID.json).",
)
@json_option
@click.pass_context
def init(ctx: click.Context, admin: str, public_key: Path, trust_out: Path | None, as_json: bool) -> None:
    """Initialise the registry's root of trust: its admin, their key and the registry key.

    Writes a trust file to keep outside the registry (give it to `adapters audit verify --trust`).
    Direct database access is the operator's root of trust: run this on the registry's host.
    """
    anchor = registry(ctx).init(admin=admin, public_key=public_key, trust_out=trust_out)
    output(as_json).result({**anchor.to_dict(), "path": str(anchor.path)}, render_trust)
