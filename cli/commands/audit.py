"""audit log, checkpoint, verify, report: the tamper-evident log and what auditors read."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, out_option, output, registry
from cli._output import warn
from cli._render import render_audit_log, render_audit_verify, render_checkpoint
from registry import types

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command(name="log")
@click.argument("ref", required=False)
@json_option
@click.pass_context
def audit_log(ctx: click.Context, ref: str | None, as_json: bool) -> None:
    """Every recorded action, in order (REF: one adapter NAME or version NAME:N)."""
    events = registry(ctx).audit_log(ref)
    output(as_json).result(events, render_audit_log)


@audit.command(name="checkpoint")
@out_option(
    "File to write; repeatable (keep copies where the database's administrators cannot write).",
    name="outs",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--force", is_flag=True, help="Replace an existing checkpoint file.")
@json_option
@click.pass_context
def audit_checkpoint(ctx: click.Context, outs: tuple[Path, ...], force: bool, as_json: bool) -> None:
    """Write a checkpoint (size, head hash, time) signed with the registry key; keep it outside the database.

    A copy is kept in the state directory ($ADAPTERS_STATE_DIR/REGISTRY-ID/checkpoints) and the
    checkpoint is recorded in the chain; `audit verify` checks every checkpoint it knows. Against a
    server (--registry) the server signs it; it is checked against the key pinned at `adapters login`
    and written here.
    """
    checkpoint = registry(ctx).audit_checkpoint(list(outs), force=force)
    paths = [str(p) for p in checkpoint.paths]
    output(as_json).result({**checkpoint.to_dict(), "path": paths[0], "paths": paths}, render_checkpoint)


@audit.command(name="report")
@click.argument("subject", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(types.REPORT_FORMATS),
    default="html",
    show_default=True,
    help="Report format.",
)
@out_option("File to write, - for stdout (default: audit-report[-SUBJECT]-DATE.EXT here).")
@click.option("--since", help="Only versions created and records made from this date (YYYY-MM-DD or ISO-8601).")
@click.option("--until", help="... up to this date (inclusive).")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint to check the chain against (default: the latest one written here). Repeatable.",
)
@click.pass_context
def audit_report(
    ctx: click.Context,
    subject: str | None,
    fmt: str,
    out: str | None,
    since: str | None,
    until: str | None,
    checkpoints: tuple[Path, ...],
) -> None:
    """Write the audit report of the registry, an adapter (NAME) or a version (NAME:N).

    Identity, adapter facts, base, lineage, evaluation, verification, approvals, lifecycle and
    the audit chain's integrity; problems first. HTML (self-contained), Markdown or JSON.
    """
    import sys
    from datetime import date

    report = registry(ctx).audit_report(subject, format=fmt, since=since, until=until, checkpoints=checkpoints)
    if out == "-":
        sys.stdout.write(report.content)
    else:
        stem = "audit-report" + (f"-{subject.replace('/', '_').replace(':', '-').replace('@', '-')}" if subject else "")
        path = Path(out or f"{stem}-{date.today():%Y%m%d}.{fmt}")
        report.save(path)
        click.echo(f"{path} ({report.format}, {report.sha256})")
    if report.problems:
        click.echo(f"warning: the report lists {report.problems} problem(s) at the top", err=True)


@audit.command(name="verify")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A checkpoint file (besides those kept on this machine). Repeatable.",
)
@click.option(
    "--trust",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The trust file `adapters init` wrote (default: the one on this machine for this registry, if any).",
)
@click.option(
    "--blobs",
    type=click.Choice(["quick", "full"]),
    is_flag=False,
    flag_value="quick",
    default=None,
    help="Also check the blob store: --blobs (every blob exists with its size) or --blobs=full (re-hash them).",
)
@json_option
@click.pass_context
def audit_verify(
    ctx: click.Context, checkpoints: tuple[Path, ...], trust: Path | None, blobs: str | None, as_json: bool
) -> None:
    """Check the chain, every checkpoint, every fact and signature; exit 3 naming each problem.

    Against a server (--registry) the log is downloaded and checked here, against the checkpoints
    and trust file on this machine and the registry key pinned at `adapters login`; --blobs asks
    the server to check its store (which a client cannot list).
    """
    result = registry(ctx).audit_verify(checkpoints, trust=trust, blobs=blobs)
    url = ctx.find_root().obj.registry_url
    if blobs and url:
        warn(
            f"the blob store was checked by the server {url}, which alone can list it; the chain, checkpoints, "
            "facts and signatures were checked here"
        )
    output(as_json).result(result, render_audit_verify)
    if not result.ok:
        ctx.exit(3)
