"""eval add: evaluation results appended to versions."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, output, registry
from cli._render import render_evals

__all__ = ["eval_group"]


@click.group(name="eval")
def eval_group() -> None:
    """Evaluation results of versions."""


@eval_group.command(name="add")
@click.argument("ref")
@click.option("--metric", "metrics", multiple=True, required=True, metavar="NAME=VALUE", help="A result. Repeatable.")
@click.option("--dataset", help="The evaluation dataset the results are on.")
@key_option
@json_option
@click.pass_context
def eval_add(
    ctx: click.Context, ref: str, metrics: tuple[str, ...], dataset: str | None, key: Path | None, as_json: bool
) -> None:
    """Append evaluation results to REF (policies read the latest per metric and dataset)."""
    label, recorded = registry(ctx).add_evals(ref, metrics, dataset=dataset, key=key)
    output(as_json).result({"ref": label, "evals": [e.to_dict() for e in recorded]}, render_evals)
