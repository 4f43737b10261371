"""policy set, show, check: the governance policies in force."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, output, registry
from cli._render import render_policy, render_policy_check, render_policy_set

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """Governance policies: set, show, check."""


@policy.command(name="set")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--channel", help="Make it the policy of one channel only (releases to it).")
@key_option
@json_option
@click.pass_context
def policy_set(ctx: click.Context, file: Path, channel: str | None, key: Path | None, as_json: bool) -> None:
    """Make the policy in FILE active (admins only)."""
    output(as_json).result(registry(ctx).set_policy(file, channel=channel, key=key), render_policy_set)


@policy.command(name="show")
@click.option("--channel", help="The policy releases to this channel are held to.")
@json_option
@click.pass_context
def policy_show(ctx: click.Context, channel: str | None, as_json: bool) -> None:
    """Show the policy in force, with its digest."""
    output(as_json).result(registry(ctx).policy(channel=channel), render_policy)


@policy.command(name="check")
@click.argument("ref")
@click.option("--channel", help="Check as for a release to this channel (its policy and channel order).")
@json_option
@click.pass_context
def policy_check(ctx: click.Context, ref: str, channel: str | None, as_json: bool) -> None:
    """One line per rule of the policy, pass or fail and why; exit 3 when any fails."""
    check = registry(ctx).check_policy(ref, channel=channel)
    output(as_json).result(check, render_policy_check)
    if not check.passed:
        ctx.exit(3)
