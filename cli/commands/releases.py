"""The lifecycle and releases: review, approve, reject, release, merge, rollback, deprecate, revoke, channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli._context import json_option, key_option, out_option, output, registry
from cli._render import render_action, render_channels, render_merge
from registry import types

__all__ = ["approve", "channels", "deprecate", "merge", "reject", "release", "review", "revoke", "rollback"]


def _action(result: Any, as_json: bool) -> None:
    output(as_json).result(result, render_action)


@click.command()
@click.argument("ref")
@click.option("--comment", help="Why it is ready for review.")
@key_option
@json_option
@click.pass_context
def review(ctx: click.Context, ref: str, comment: str | None, key: Path | None, as_json: bool) -> None:
    """Submit draft REF for review."""
    _action(registry(ctx).review(ref, comment=comment, key=key), as_json)


@click.command()
@click.argument("ref")
@click.option("--comment", help="What was reviewed.")
@key_option
@json_option
@click.pass_context
def approve(ctx: click.Context, ref: str, comment: str | None, key: Path | None, as_json: bool) -> None:
    """Approve REF under the active policy (exit 3 when the policy does not allow it).

    The version becomes approved once the policy's approvals are complete.
    """
    _action(registry(ctx).approve(ref, comment=comment, key=key), as_json)


@click.command()
@click.argument("ref")
@click.option("--comment", required=True, help="Why it is rejected.")
@key_option
@json_option
@click.pass_context
def reject(ctx: click.Context, ref: str, comment: str, key: Path | None, as_json: bool) -> None:
    """Reject REF (in review); a rejected version is final."""
    _action(registry(ctx).reject(ref, comment=comment, key=key), as_json)


def _merge_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--base", help="Base model directory or cached Hugging Face id (default: the recorded base)."),
            click.option(
                "--dtype",
                type=click.Choice(types.MERGE_DTYPES),
                help="Cast the merged model's floating tensors (default: keep the base's dtypes).",
            ),
            click.option(
                "--base-precision",
                type=click.Choice(types.BASE_PRECISIONS),
                default="original",
                show_default=True,
                help="nf4-dequantized: merge into dequantize(quantize(W)), as a 4-bit training base held W.",
            ),
            click.option(
                "--allow-base-mismatch", is_flag=True, help="Merge into a base whose fingerprint differs (recorded)."
            ),
            click.option("--force", is_flag=True, help="Replace the output directory if it holds files."),
        ]
    ):
        f = option(f)
    return f


@click.command()
@click.argument("ref")
@click.option("--channel", "-c", required=True, help="Channel to point at REF, e.g. staging or production.")
@click.option("--reason", help="Why (recorded with the release).")
@click.option("--merge", "merge_", is_flag=True, help="Also write a merged checkpoint (base + adapter) to --out.")
@out_option("Directory for the merged checkpoint.", type=click.Path(file_okay=False, path_type=Path))
@_merge_options
@key_option
@json_option
@click.pass_context
def release(
    ctx: click.Context,
    ref: str,
    channel: str,
    reason: str | None,
    merge_: bool,
    out: Path | None,
    base: str | None,
    dtype: str | None,
    base_precision: str,
    allow_base_mismatch: bool,
    force: bool,
    key: Path | None,
    as_json: bool,
) -> None:
    """Release REF to CHANNEL if the channel's policy allows it (exit 3 otherwise).

    With --merge, the merged checkpoint is written to --out first and the release is recorded
    only when it is complete, with its files' sha256, the base fingerprint, method and dtype.
    """
    if not merge_ and (out or base or dtype or base_precision != "original" or allow_base_mismatch or force):
        raise click.UsageError(
            "--out, --base, --dtype, --base-precision, --allow-base-mismatch and --force need --merge"
        )
    sink = output(as_json)
    with sink.progress() as progress:
        result = registry(ctx).release(
            ref,
            channel=channel,
            key=key,
            reason=reason,
            merge=merge_,
            base=base,
            out=out,
            dtype=dtype,
            base_precision=base_precision,
            allow_base_mismatch=allow_base_mismatch,
            force=force,
            progress=progress,
        )
    for message in (result.details or {}).get("warnings", []):
        sink.warn(message)
    sink.result(result, render_action)


@click.command()
@click.argument("ref")
@out_option("Directory to write.", required=True, type=click.Path(file_okay=False, path_type=Path))
@_merge_options
@json_option
@click.pass_context
def merge(
    ctx: click.Context,
    ref: str,
    out: Path,
    base: str | None,
    dtype: str | None,
    base_precision: str,
    allow_base_mismatch: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Fold REF into its base and write a model directory that transformers loads as is.

    Streams the base shard by shard, keeps its sharding, index, config and tokenizer, and
    equals peft's merge_and_unload. The directory appears complete or not at all.
    """
    sink = output(as_json)
    with sink.progress() as progress:
        result = registry(ctx).merge(
            ref,
            out=out,
            base=base,
            dtype=dtype,
            base_precision=base_precision,
            allow_base_mismatch=allow_base_mismatch,
            force=force,
            progress=progress,
        )
    for message in result.warnings:
        sink.warn(message)
    sink.result(result, render_merge)


@click.command()
@click.argument("name")
@click.option("--channel", "-c", required=True, help="Channel to move back.")
@click.option("--to", "to", type=click.IntRange(min=1), help="Version to return to (released on CHANNEL before).")
@click.option("--reason", help="Why (recorded with the rollback).")
@key_option
@json_option
@click.pass_context
def rollback(
    ctx: click.Context, name: str, channel: str, to: int | None, reason: str | None, key: Path | None, as_json: bool
) -> None:
    """Move NAME@CHANNEL back to the version it pointed to before (or to --to N)."""
    _action(registry(ctx).rollback(name, channel=channel, to=to, key=key, reason=reason), as_json)


@click.command()
@click.argument("ref")
@click.option("--reason", help="Why it should no longer be used.")
@key_option
@json_option
@click.pass_context
def deprecate(ctx: click.Context, ref: str, reason: str | None, key: Path | None, as_json: bool) -> None:
    """Mark REF deprecated: still pullable, never released again."""
    _action(registry(ctx).deprecate(ref, reason=reason, key=key), as_json)


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why (shown to everyone who tries to pull it).")
@key_option
@json_option
@click.pass_context
def revoke(ctx: click.Context, ref: str, reason: str, key: Path | None, as_json: bool) -> None:
    """Revoke REF: pull refuses it and no channel may point to it."""
    _action(registry(ctx).revoke(ref, reason=reason, key=key), as_json)


@click.command()
@click.argument("name")
@json_option
@click.pass_context
def channels(ctx: click.Context, name: str, as_json: bool) -> None:
    """Each channel of adapter NAME: its current version and full history."""
    output(as_json).result(registry(ctx).channels(name), lambda states: render_channels(name, states))
