"""The ``adapters`` command.

Each command parses its options, calls the library once and renders the result.
Exit codes: 0 success; 1 an error (bad input, not found, integrity); 2 a usage
error; 3 a check that ran and did not pass. Tracebacks only with ADAPTERS_DEBUG=1.

Nothing heavy is imported at module level: ``adapters --help`` must start fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli._output import emit_json, progress_bars, warn
from registry import types

if TYPE_CHECKING:
    from registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["cli", "main"]


class _Failure(click.ClickException):
    """A library error, shown as one line on stderr with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    """Turns library errors into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was recorded", err=True)
            sys.exit(130)
        except Exception as exc:
            from registry.errors import RegistryError

            debug = os.environ.get("ADAPTERS_DEBUG", "") not in ("", "0")
            if debug:
                traceback.print_exc()
            if isinstance(exc, RegistryError):
                raise _Failure(exc.message, exc.exit_code) from exc
            raise _Failure(
                f"unexpected {type(exc).__name__}: {exc} (run again with ADAPTERS_DEBUG=1 for a traceback)", 1
            ) from exc


class _State:
    """Lazily opened registry for the commands of one invocation."""

    def __init__(self, home: str | None) -> None:
        self.home = home
        self._registry: Registry | None = None

    def registry(self) -> Registry:
        if self._registry is None:
            from registry import Registry

            self._registry = Registry(self.home)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout.")(f)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="ADAPTERS_HOME",
    help="Registry home (SQLite file and blob store). Default: $ADAPTERS_HOME or ~/.adapters.",
)
@click.version_option(package_name="adapter-registry", prog_name="adapters")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """A registry and governance toolkit for PEFT adapters (LoRA, QLoRA, DoRA).

    Store adapters immutably with their facts, pull them back verified.
    Configuration: ADAPTERS_HOME, ADAPTERS_DB, ADAPTERS_STORE, ADAPTERS_USER.
    """
    state = _State(home)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _registry(ctx: click.Context) -> Registry:
    state: _State = ctx.find_root().obj
    return state.registry()


def _warn_all(messages: Any) -> None:
    for m in messages:
        warn(m)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=str))
@click.option("--name", "-n", required=True, help="Adapter name, e.g. support-summarizer or team/support-summarizer.")
@click.option("--base", help="Base model: a local directory or a Hugging Face id (never downloaded).")
@click.option("--base-revision", help="Revision of the base (a Hub commit, branch or tag).")
@click.option(
    "--quantization",
    type=click.Choice(types.QUANTIZATION_METHODS),
    help="Quantization of the base during training (QLoRA: nf4). Default: none.",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    metavar="SPEC",
    help="Training dataset as key=value,... with keys name (required), uri, revision, sha256, license, rows, "
    "split, path (a local file/dir: hashed, rows counted). Repeatable.",
)
@click.option("--eval", "evals", multiple=True, metavar="METRIC=VALUE", help="An evaluation result. Repeatable.")
@click.option(
    "--meta",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML/JSON file with base, base_revision, quantization, datasets, evals, training, description, "
    "parent; flags override it.",
)
@click.option("--description", help="What this version is.")
@click.option("--parent", metavar="REF", help="The version this one was derived from.")
@_json_option
@click.pass_context
def push(
    ctx: click.Context,
    directory: str,
    name: str,
    base: str | None,
    base_revision: str | None,
    quantization: str | None,
    datasets: tuple[str, ...],
    evals: tuple[str, ...],
    meta: str | None,
    description: str | None,
    parent: str | None,
    as_json: bool,
) -> None:
    """Store the adapter in DIRECTORY as the next version of NAME.

    DIRECTORY is what peft's save_pretrained wrote (adapter_config.json and
    adapter_model.safetensors, plus any tokenizer files). Prints NAME:N and its digest.
    """
    with progress_bars(not as_json) as progress:
        result = _registry(ctx).push(
            directory,
            name=name,
            base=base,
            base_revision=base_revision,
            quantization=quantization,
            datasets=datasets,
            evals=evals,
            meta=meta,
            description=description,
            parent=parent,
            progress=progress,
        )
    _warn_all(result.warnings)
    if as_json:
        emit_json(result.to_dict())
    else:
        from cli._render import render_push

        render_push(result)


@cli.command()
@click.argument("ref")
@click.option("--output", "-o", "out", required=True, type=click.Path(), help="Directory to write the adapter to.")
@click.option("--force", is_flag=True, help="Replace OUT if it already holds files.")
@click.option("--allow-revoked", is_flag=True, help="Pull a revoked version anyway (for investigation).")
@_json_option
@click.pass_context
def pull(ctx: click.Context, ref: str, out: str, force: bool, allow_revoked: bool, as_json: bool) -> None:
    """Write version REF to a directory that PeftModel.from_pretrained loads as is.

    Every file is re-hashed on the way out; the directory appears complete or not at all.
    REF is NAME (latest), NAME:N, NAME@CHANNEL or NAME@sha256:PREFIX.
    """
    with progress_bars(not as_json) as progress:
        result = _registry(ctx).pull(ref, out, force=force, allow_revoked=allow_revoked, progress=progress)
    if as_json:
        emit_json(result.to_dict())
    else:
        from cli._render import render_pull

        render_pull(result)


@cli.command(name="ls")
@click.argument("pattern", required=False)
@click.option("--base", help="Only versions trained on this base (name or fingerprint prefix).")
@click.option("--peft-type", help="Only this PEFT type (LORA, IA3, ...).")
@click.option("--min-rank", type=click.IntRange(min=0), help="Only versions with r >= N.")
@click.option("--max-rank", type=click.IntRange(min=0), help="Only versions with r <= N.")
@click.option("--quantization", type=click.Choice(types.QUANTIZATION_METHODS), help="Only this training quantization.")
@click.option("--latest", is_flag=True, help="Only the latest version of each adapter.")
@_json_option
@click.pass_context
def ls_(
    ctx: click.Context,
    pattern: str | None,
    base: str | None,
    peft_type: str | None,
    min_rank: int | None,
    max_rank: int | None,
    quantization: str | None,
    latest: bool,
    as_json: bool,
) -> None:
    """List versions, one row each (PATTERN: a name, a namespace, or a glob like 'support-*')."""
    rows = _registry(ctx).ls(
        pattern,
        base=base,
        peft_type=peft_type,
        min_rank=min_rank,
        max_rank=max_rank,
        quantization=quantization,
        latest=latest,
    )
    if as_json:
        emit_json([r.to_dict() for r in rows])
    else:
        from cli._render import render_ls

        render_ls(rows)


@cli.command()
@click.argument("ref")
@_json_option
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show every fact recorded about version REF."""
    info = _registry(ctx).show(ref)
    if as_json:
        emit_json(info.to_dict())
    else:
        from cli._render import render_show

        render_show(info)


@cli.command()
@click.argument("ref")
@click.option("--base", help="Base model directory or cached Hugging Face id. Default: the base recorded at push.")
@click.option(
    "--mode",
    type=click.Choice(types.VERIFY_MODES),
    default="all",
    show_default=True,
    help="static: safetensors headers only; load: a real 4-bit load with peft and a probe input.",
)
@click.option(
    "--device",
    type=click.Choice(types.DEVICES),
    default="auto",
    show_default=True,
    help="Where the load check runs: auto is CUDA when available, else the CPU.",
)
@click.option("--quant", type=click.Choice(types.FOUR_BIT_TYPES), default="nf4", show_default=True, help="4-bit type.")
@click.option(
    "--double-quant/--no-double-quant", default=True, show_default=True, help="Double quantization of the 4-bit base."
)
@click.option(
    "--compute-dtype",
    type=click.Choice(types.COMPUTE_DTYPES),
    help="Compute dtype of the 4-bit layers. Default: float32 on the CPU, bfloat16 on CUDA.",
)
@click.option("--allow-base-mismatch", is_flag=True, help="Let a base whose fingerprint differs pass (recorded).")
@_json_option
@click.pass_context
def verify(
    ctx: click.Context,
    ref: str,
    base: str | None,
    mode: str,
    device: str,
    quant: str,
    double_quant: bool,
    compute_dtype: str | None,
    allow_base_mismatch: bool,
    as_json: bool,
) -> None:
    """Prove that version REF fits the exact base it will run on.

    Exit 0 when every check passes, 3 when a check failed, 1 when it could not run.
    The report is stored with the version either way (adapters show lists it).
    """
    report = _registry(ctx).verify(
        ref,
        base,
        mode=mode,
        device=device,
        quant=quant,
        double_quant=double_quant,
        compute_dtype=compute_dtype,
        allow_base_mismatch=allow_base_mismatch,
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        from cli._render import render_verification

        render_verification(report)
    if not report.passed:
        ctx.exit(3)


@cli.command()
@click.option(
    "--home",
    "demo_home",
    type=click.Path(file_okay=False),
    help="Registry home to use (default: a new temporary directory, removed afterwards).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary directory and print where it is.")
def demo(demo_home: str | None, keep: bool) -> None:
    """Walk through the main job on a tiny model built on the spot.

    Builds a small random Llama base and a LoRA adapter with peft in a temporary
    directory, then pushes, lists, shows, verifies, reviews, approves, releases, rolls
    back, pulls and audits it with the real commands a user would type, printing each.
    """
    from cli._demo import run_demo

    run_demo(cli, home=demo_home, keep=keep)


def main() -> None:
    cli(prog_name="adapters")


from cli import _governance  # noqa: E402, F401  (registers the governance commands on `cli`)
