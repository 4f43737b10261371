"""push, pull, ls, show: versions in and out of the registry."""

from __future__ import annotations

import click

from cli._context import json_option, out_option, output, registry
from cli._render import render_ls, render_pull, render_push, render_show
from registry import types

__all__ = ["ls_", "pull", "push", "show"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=str))
@click.option("--name", "-n", required=True, help="Adapter name, e.g. support-summarizer or team/support-summarizer.")
@click.option("--base", help="Base model: a local directory or a Hugging Face id (never downloaded).")
@click.option(
    "--base-name",
    metavar="NAME",
    help="The base's identity (its Hugging Face id) when --base is a local directory; default: the id of a Hub "
    "cache snapshot or the adapter config's base_model_name_or_path, else the directory's path.",
)
@click.option("--base-revision", help="Revision of the base (a Hub commit, branch or tag).")
@click.option(
    "--allow-unverified-base",
    is_flag=True,
    help="Push even though the base directory holds no weight files to fingerprint (recorded as unverified).",
)
@click.option(
    "--quantization",
    type=click.Choice(types.QUANTIZATION_METHODS),
    help="Quantization of the base during training (QLoRA: nf4). Default: none.",
)
@click.option(
    "--double-quant/--no-double-quant",
    default=None,
    help="Whether the 4-bit base was double-quantized (bnb_4bit_use_double_quant). Default: off, as bitsandbytes.",
)
@click.option(
    "--compute-dtype",
    type=click.Choice(types.COMPUTE_DTYPES),
    help="Compute dtype of the quantized layers (bnb_4bit_compute_dtype). Default: float32, as transformers.",
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
    help="YAML/JSON file with base, base_name, base_revision, quantization, datasets, evals, training, "
    "description, parent; flags override it.",
)
@click.option("--description", help="What this version is.")
@click.option("--parent", metavar="REF", help="The version this one was derived from.")
@json_option
@click.pass_context
def push(
    ctx: click.Context,
    directory: str,
    name: str,
    base: str | None,
    base_name: str | None,
    base_revision: str | None,
    allow_unverified_base: bool,
    quantization: str | None,
    double_quant: bool | None,
    compute_dtype: str | None,
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
    out = output(as_json)
    stated: str | dict[str, object] | None = quantization
    if double_quant is not None or compute_dtype is not None:
        if quantization not in ("nf4", "fp4"):
            raise click.UsageError(
                "--double-quant and --compute-dtype describe a 4-bit base: add --quantization nf4 or fp4"
            )
        stated = {"method": quantization, "double_quant": double_quant, "compute_dtype": compute_dtype}
    with out.progress() as progress:
        result = registry(ctx).push(
            directory,
            name=name,
            base=base,
            base_name=base_name,
            base_revision=base_revision,
            allow_unverified_base=allow_unverified_base,
            quantization=stated,
            datasets=datasets,
            evals=evals,
            meta=meta,
            description=description,
            parent=parent,
            progress=progress,
        )
    for message in result.warnings:
        out.warn(message)
    out.result(result, render_push)


@click.command()
@click.argument("ref")
@out_option("Directory to write the adapter to.", aliases=("--output",), required=True, type=click.Path())
@click.option("--force", is_flag=True, help="Replace OUT if it already holds files.")
@click.option("--allow-revoked", is_flag=True, help="Pull a revoked version anyway (for investigation).")
@json_option
@click.pass_context
def pull(ctx: click.Context, ref: str, out: str, force: bool, allow_revoked: bool, as_json: bool) -> None:
    """Write version REF to a directory that PeftModel.from_pretrained loads as is.

    Every file is re-hashed on the way out; the directory appears complete or not at all.
    REF is NAME (latest), NAME:N, NAME@CHANNEL or NAME@sha256:PREFIX.
    """
    sink = output(as_json)
    with sink.progress() as progress:
        result = registry(ctx).pull(ref, out, force=force, allow_revoked=allow_revoked, progress=progress)
    sink.result(result, render_pull)


@click.command(name="ls")
@click.argument("pattern", required=False)
@click.option("--base", help="Only versions trained on this base (name or fingerprint prefix).")
@click.option("--peft-type", help="Only this PEFT type (LORA, IA3, ...).")
@click.option("--min-rank", type=click.IntRange(min=0), help="Only versions with r >= N.")
@click.option("--max-rank", type=click.IntRange(min=0), help="Only versions with r <= N.")
@click.option("--quantization", type=click.Choice(types.QUANTIZATION_METHODS), help="Only this training quantization.")
@click.option("--latest", is_flag=True, help="Only the latest version of each adapter.")
@click.option("--state", type=click.Choice(types.STATES), help="Only versions in this state.")
@click.option("--channel", help="Only versions a channel points to now (e.g. production).")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COND",
    help='Only versions whose latest METRIC[@DATASET] meets COND, e.g. "accuracy>=0.9". Repeatable.',
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only versions tagged KEY=VALUE. Repeatable.")
@json_option
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
    state: str | None,
    channel: str | None,
    where: tuple[str, ...],
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """List versions, one row each (PATTERN: a name, a namespace, or a glob like 'support-*')."""
    rows = registry(ctx).ls(
        pattern,
        base=base,
        peft_type=peft_type,
        min_rank=min_rank,
        max_rank=max_rank,
        quantization=quantization,
        latest=latest,
        state=state,
        channel=channel,
        where=where,
        tags=tags,
    )
    output(as_json).result(rows, render_ls)


@click.command()
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show every fact recorded about version REF."""
    info = registry(ctx).show(ref)
    output(as_json).result(info, render_show)
