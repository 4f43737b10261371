"""fsck and gc: checking the blob store against the records, and collecting what no version uses."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, output, registry
from cli._render_maintenance import render_fsck, render_gc

__all__ = ["fsck", "gc"]


@click.command()
@click.option(
    "--quick",
    is_flag=True,
    help="Check presence and sizes from the store's listing only (fast: a few LIST requests on S3); "
    "without it every referenced blob is re-hashed.",
)
@json_option
@click.pass_context
def fsck(ctx: click.Context, quick: bool, as_json: bool) -> None:
    """Check that every blob a version references is in the store, intact, and every version is what was pushed.

    Each missing or corrupted blob is listed once, with every NAME:VERSION and file that uses it.
    Exit 0 when all is well, 3 when anything is wrong. Reads only; any user may run it.
    """
    result = registry(ctx).fsck(quick=quick)
    output(as_json).result(result, render_fsck)
    if not result.ok:
        ctx.exit(3)


@click.command()
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Only remove what was last written longer ago than this (30m, 24h, 7d, 0s).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove and record nothing.")
@key_option
@json_option
@click.pass_context
def gc(ctx: click.Context, grace: str, dry_run: bool, key: Path | None, as_json: bool) -> None:
    """Remove blobs no version references, and abandoned uploads, older than the grace period (admins only).

    Orphans come only from pushes that crashed or were refused (versions are never deleted). Blobs a push
    is storing while gc runs are never removed. Recorded as a `gc` audit event (signed where the policy
    requires signatures).
    """
    result = registry(ctx).gc(grace=grace, dry_run=dry_run, key=key)
    output(as_json).result(result, render_gc)
