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
@click.argument("file")
@click.option("--channel", help="Make it the policy of one channel only (releases to it).")
@key_option
@json_option
@click.pass_context
def policy_set(ctx: click.Context, file: str, channel: str | None, key: Path | None, as_json: bool) -> None:
    """Make the policy in FILE active (admins only); FILE is a YAML file or a built-in name (default, regulated)."""
    output(as_json).result(registry(ctx).set_policy(file, channel=channel, key=key), render_policy_set)


@policy.command(name="show")
@click.option("--channel", help="The policy releases to this channel are held to.")
@json_option
@click.pass_context
def policy_show(ctx: click.Context, channel: str | None, as_json: bool) -> None:
    """Show the policy in force, with its digest.

    Built-in policies, usable by name with `adapters policy set NAME`: default (one approval, the author
    may approve, no signatures), regulated (two signed approvals by reviewer/risk users other than the
    author, full lineage, an accuracy floor, a load verification, bounded rank, staging before production)
    and serving (one approval and an adapter vLLM (--max-lora-rank 64) and LoRAX load whole; for a channel).
    """
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
