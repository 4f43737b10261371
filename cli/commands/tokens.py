"""tokens: the credentials `adapters serve` knows its callers by."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli._context import json_option, key_option, output, registry
from cli._output import stderr_console, stdout_console
from cli._render_show import when
from cli._tables import prose, render_table, whole

if TYPE_CHECKING:
    from registry import ApiToken, CreatedToken

__all__ = ["tokens"]


@click.group()
def tokens() -> None:
    """API tokens for a team registry's server (`adapters serve`): create, list, revoke."""


@tokens.command(name="create")
@click.argument("user")
@click.option("--name", "label", help="A label saying what the token is for (e.g. ci-training).")
@click.option("--expires", default="90d", show_default=True, help="Lifetime: 90d, 12h, 30m, 45s (at most 366d).")
@click.option(
    "--role", type=click.Choice(["admin"]), help="Bootstrap only: on a registry with no users, make USER its admin."
)
@key_option
@json_option
@click.pass_context
def tokens_create(
    ctx: click.Context, user: str, label: str | None, expires: str, role: str | None, key: Path | None, as_json: bool
) -> None:
    """Issue a token for USER and print its secret, once (admins; the operator on the server host bootstraps).

    The registry keeps only the secret's sha256: store the secret in your CI's secret store or give it
    to `adapters login URL --token-stdin`.
    """
    created = registry(ctx).create_token(user, label=label, expires=expires, role=role, key=key)
    output(as_json).result(created, _render_created)


@tokens.command(name="ls")
@click.argument("user", required=False)
@json_option
@click.pass_context
def tokens_ls(ctx: click.Context, user: str | None, as_json: bool) -> None:
    """List tokens (everyone's for an admin, else your own): id, user, label, created, expires, last used."""
    found = registry(ctx).tokens(user)
    if as_json:
        output(True).result([{**t.to_dict(), "state": t.state()} for t in found], lambda _: None)
        return
    render_table(
        stdout_console(),
        None,
        [whole("ID"), whole("USER"), prose("LABEL", drop=4), whole("STATE"), prose("CREATED", drop=3),
         prose("EXPIRES", drop=2), prose("LAST USED", drop=1)],
        [(t.id, t.user, t.label or "-", t.state(), when(t.created_at), when(t.expires_at),
          when(t.last_used_at) if t.last_used_at else "never") for t in found],
    )  # fmt: skip


@tokens.command(name="revoke")
@click.argument("token_id", metavar="ID")
@click.option("--reason", help="Why (recorded in the audit log).")
@key_option
@json_option
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: str, reason: str | None, key: Path | None, as_json: bool) -> None:
    """Revoke the token ID at once (its owner, or an admin)."""
    token = registry(ctx).revoke_token(token_id, reason=reason, key=key)
    output(as_json).result(token, lambda t: print(f"{t.id} of {t.user} revoked at {t.revoked_at}"))


def _render_created(created: CreatedToken) -> None:
    t: ApiToken = created.token
    print(created.secret)
    stderr_console().print(
        f"token {t.id} for {t.user} ({t.label or 'no label'}), expires {when(t.expires_at)}: the secret above is "
        "shown only now; the registry keeps its hash",
        highlight=False,
    )
