"""fsck: checking the blob store against the records."""

from __future__ import annotations

import click

from cli._context import json_option, output, registry
from cli._render_maintenance import render_fsck

__all__ = ["fsck"]


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
