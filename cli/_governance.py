"""Governance commands: lifecycle, releases, policies, users, keys, evals and the audit log.

Each command parses its options, calls the library once and renders the result. A policy
that is not met exits with 3; a check that ran and failed (policy check, audit verify) too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli._output import emit_json
from cli.main import _json_option, _registry, cli
from registry import types

__all__: list[str] = []

_key_option = click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Your Ed25519 private key, to sign the action (default: $ADAPTERS_KEY).",
)


def _action(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
    else:
        from cli._render import render_action

        render_action(result)


@cli.command()
@click.argument("ref")
@click.option("--comment", help="Why it is ready for review.")
@_json_option
@click.pass_context
def review(ctx: click.Context, ref: str, comment: str | None, as_json: bool) -> None:
    """Submit draft REF for review."""
    _action(_registry(ctx).review(ref, comment=comment), as_json)


@cli.command()
@click.argument("ref")
@click.option("--comment", help="What was reviewed.")
@_key_option
@_json_option
@click.pass_context
def approve(ctx: click.Context, ref: str, comment: str | None, key: Path | None, as_json: bool) -> None:
    """Approve REF under the active policy (exit 3 when the policy does not allow it).

    The version becomes approved once the policy's approvals are complete.
    """
    _action(_registry(ctx).approve(ref, comment=comment, key=key), as_json)


@cli.command()
@click.argument("ref")
@click.option("--comment", required=True, help="Why it is rejected.")
@_key_option
@_json_option
@click.pass_context
def reject(ctx: click.Context, ref: str, comment: str, key: Path | None, as_json: bool) -> None:
    """Reject REF (in review); a rejected version is final."""
    _action(_registry(ctx).reject(ref, comment=comment, key=key), as_json)


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


@cli.command()
@click.argument("ref")
@click.option("--channel", "-c", required=True, help="Channel to point at REF, e.g. staging or production.")
@click.option("--reason", help="Why (recorded with the release).")
@click.option("--merge", "merge_", is_flag=True, help="Also write a merged checkpoint (base + adapter) to --out.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Directory for the merged checkpoint.")
@_merge_options
@_key_option
@_json_option
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
    from cli._output import progress_bars, warn

    with progress_bars(not as_json) as progress:
        result = _registry(ctx).release(
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
        warn(message)
    _action(result, as_json)


@cli.command()
@click.argument("ref")
@click.option(
    "--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write."
)
@_merge_options
@_json_option
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
    from cli._output import progress_bars, warn

    with progress_bars(not as_json) as progress:
        result = _registry(ctx).merge(
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
        warn(message)
    if as_json:
        emit_json(result.to_dict())
    else:
        from cli._render import render_merge

        render_merge(result)


@cli.command()
@click.argument("name")
@click.option("--channel", "-c", required=True, help="Channel to move back.")
@click.option("--to", "to", type=click.IntRange(min=1), help="Version to return to (released on CHANNEL before).")
@click.option("--reason", help="Why (recorded with the rollback).")
@_key_option
@_json_option
@click.pass_context
def rollback(
    ctx: click.Context, name: str, channel: str, to: int | None, reason: str | None, key: Path | None, as_json: bool
) -> None:
    """Move NAME@CHANNEL back to the version it pointed to before (or to --to N)."""
    _action(_registry(ctx).rollback(name, channel=channel, to=to, key=key, reason=reason), as_json)


@cli.command()
@click.argument("ref")
@click.option("--reason", help="Why it should no longer be used.")
@_json_option
@click.pass_context
def deprecate(ctx: click.Context, ref: str, reason: str | None, as_json: bool) -> None:
    """Mark REF deprecated: still pullable, never released again."""
    _action(_registry(ctx).deprecate(ref, reason=reason), as_json)


@cli.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why (shown to everyone who tries to pull it).")
@_json_option
@click.pass_context
def revoke(ctx: click.Context, ref: str, reason: str, as_json: bool) -> None:
    """Revoke REF: pull refuses it and no channel may point to it."""
    _action(_registry(ctx).revoke(ref, reason=reason), as_json)


@cli.command()
@click.argument("name")
@_json_option
@click.pass_context
def channels(ctx: click.Context, name: str, as_json: bool) -> None:
    """Each channel of adapter NAME: its current version and full history."""
    states = _registry(ctx).channels(name)
    if as_json:
        emit_json([c.to_dict() for c in states])
    else:
        from cli._render import render_channels

        render_channels(name, states)


# -- eval ----------------------------------------------------------------------------------


@cli.group(name="eval")
def eval_group() -> None:
    """Evaluation results of versions."""


@eval_group.command(name="add")
@click.argument("ref")
@click.option("--metric", "metrics", multiple=True, required=True, metavar="NAME=VALUE", help="A result. Repeatable.")
@click.option("--dataset", help="The evaluation dataset the results are on.")
@_json_option
@click.pass_context
def eval_add(ctx: click.Context, ref: str, metrics: tuple[str, ...], dataset: str | None, as_json: bool) -> None:
    """Append evaluation results to REF (policies read the latest per metric and dataset)."""
    label, recorded = _registry(ctx).add_evals(ref, metrics, dataset=dataset)
    if as_json:
        emit_json({"ref": label, "evals": [e.to_dict() for e in recorded]})
    else:
        for e in recorded:
            click.echo(f"{label}  {e.metric} = {e.value:g}" + (f" on {e.dataset}" if e.dataset else ""))


# -- policy --------------------------------------------------------------------------------


@cli.group()
def policy() -> None:
    """Governance policies: set, show, check."""


@policy.command(name="set")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--channel", help="Make it the policy of one channel only (releases to it).")
@_json_option
@click.pass_context
def policy_set(ctx: click.Context, file: Path, channel: str | None, as_json: bool) -> None:
    """Make the policy in FILE active (admins only)."""
    active = _registry(ctx).set_policy(file, channel=channel)
    if as_json:
        emit_json(active.to_dict())
    else:
        scope = f"channel {channel}" if channel else "the registry"
        click.echo(f"policy {active.policy.name!r} ({active.policy.digest}) is now active for {scope}")


@policy.command(name="show")
@click.option("--channel", help="The policy releases to this channel are held to.")
@_json_option
@click.pass_context
def policy_show(ctx: click.Context, channel: str | None, as_json: bool) -> None:
    """Show the policy in force, with its digest."""
    active = _registry(ctx).policy(channel=channel)
    if as_json:
        emit_json(active.to_dict())
    else:
        origin = "built-in default" if active.builtin else f"set {active.set_at} by {active.set_by}"
        scope = "registry" if active.scope == "*" else f"channel {active.scope}"
        click.echo(f"# policy {active.policy.name!r} for the {scope} ({origin})\n# digest {active.policy.digest}")
        click.echo(active.policy.content.rstrip())


@policy.command(name="check")
@click.argument("ref")
@click.option("--channel", help="Check as for a release to this channel (its policy and channel order).")
@_json_option
@click.pass_context
def policy_check(ctx: click.Context, ref: str, channel: str | None, as_json: bool) -> None:
    """One line per rule of the policy, pass or fail and why; exit 3 when any fails."""
    check = _registry(ctx).check_policy(ref, channel=channel)
    if as_json:
        emit_json(check.to_dict())
    else:
        from cli._render import render_policy_check

        render_policy_check(check)
    if not check.passed:
        ctx.exit(3)


# -- users and keys ------------------------------------------------------------------------


@cli.group()
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
@_json_option
@click.pass_context
def users_add(ctx: click.Context, name: str, roles: tuple[str, ...], public_key: Path | None, as_json: bool) -> None:
    """Register NAME, grant roles, register a public key (admins only; the first user is the admin)."""
    info = _registry(ctx).add_user(name, roles=roles, public_key=public_key)
    if as_json:
        emit_json(info.to_dict())
    else:
        click.echo(f"{info.name}: roles {', '.join(info.roles) or 'none'}; key {info.key_fingerprint or 'none'}")


@users.command(name="ls")
@_json_option
@click.pass_context
def users_ls(ctx: click.Context, as_json: bool) -> None:
    """List users with their roles and key fingerprints."""
    infos = _registry(ctx).users()
    if as_json:
        emit_json([i.to_dict() for i in infos])
    else:
        from cli._output import stdout_console, table

        stdout_console().print(
            table(
                None,
                ["USER", "ROLES", "KEY", "ADDED", "BY"],
                [(i.name, ", ".join(i.roles), i.key_fingerprint, i.created_at[:19], i.created_by) for i in infos],
            )
        )


@cli.group()
def keys() -> None:
    """Ed25519 signing keys."""


@keys.command(name="generate")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Directory (default: $ADAPTERS_HOME/keys)."
)
@click.option("--name", help="File name stem (default: your user name).")
@_json_option
@click.pass_context
def keys_generate(ctx: click.Context, out: Path | None, name: str | None, as_json: bool) -> None:
    """Create an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    from registry import Registry, Settings

    settings = Settings.from_env(ctx.find_root().obj.home)
    result = Registry.generate_key(out or settings.home / "keys", name or settings.user)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"private key: {result['private_key']}  (keep it secret; use it with --key or ADAPTERS_KEY)")
        click.echo(f"public key:  {result['public_key']}  ({result['fingerprint']})")
        click.echo(f"register it: adapters users add {name or settings.user} --public-key {result['public_key']}")


# -- audit ---------------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command(name="log")
@click.argument("ref", required=False)
@_json_option
@click.pass_context
def audit_log(ctx: click.Context, ref: str | None, as_json: bool) -> None:
    """Every recorded action, in order (REF: one adapter NAME or version NAME:N)."""
    events = _registry(ctx).audit_log(ref)
    if as_json:
        emit_json([e.to_dict() for e in events])
    else:
        from cli._render import render_audit_log

        render_audit_log(events)


@audit.command(name="checkpoint")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@_json_option
@click.pass_context
def audit_checkpoint(ctx: click.Context, out: Path, as_json: bool) -> None:
    """Write a checkpoint (size, head hash, time) signed with the registry key; keep it outside the database."""
    checkpoint = _registry(ctx).audit_checkpoint(out)
    if as_json:
        emit_json({**checkpoint.to_dict(), "path": str(out)})
    else:
        click.echo(
            f"checkpoint of {checkpoint.size} events, head {checkpoint.head[:16]}…, signed by {checkpoint.key}: {out}"
        )


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
@click.option("--out", "-o", help="File to write, - for stdout (default: audit-report[-SUBJECT]-DATE.EXT here).")
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

    report = _registry(ctx).audit_report(subject, format=fmt, since=since, until=until, checkpoints=checkpoints)
    if out == "-":
        sys.stdout.write(report.content)
    else:
        stem = "audit-report" + (f"-{subject.replace('/', '_').replace(':', '-').replace('@', '-')}" if subject else "")
        path = Path(out or f"{stem}-{date.today():%Y%m%d}.{fmt}")
        from registry._io import atomic_write_bytes

        atomic_write_bytes(path.absolute(), report.content.encode("utf-8"))
        click.echo(f"{path} ({report.format}, {report.sha256})")
    if report.problems:
        click.echo(f"warning: the report lists {report.problems} problem(s) at the top", err=True)


@audit.command(name="verify")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A checkpoint file. Repeatable.",
)
@_json_option
@click.pass_context
def audit_verify(ctx: click.Context, checkpoints: tuple[Path, ...], as_json: bool) -> None:
    """Recompute the chain and the checkpoints; exit 3 naming the first bad event."""
    result = _registry(ctx).audit_verify(checkpoints)
    if as_json:
        emit_json(result.to_dict())
    else:
        from cli._render import render_audit_verify

        render_audit_verify(result)
    if not result.ok:
        ctx.exit(3)
