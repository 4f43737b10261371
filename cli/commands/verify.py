"""verify: prove that a version fits the exact base it will run on."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, output, registry
from cli._render import render_verification
from registry import types

__all__ = ["verify"]


@click.command()
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
@key_option
@json_option
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
    key: Path | None,
    as_json: bool,
) -> None:
    """Prove that version REF fits the exact base it will run on.

    Exit 0 when every check passes, 3 when a check failed, 1 when it could not run.
    The report is stored with the version either way (adapters show lists it).
    """
    report = registry(ctx).verify(
        ref,
        base,
        mode=mode,
        device=device,
        quant=quant,
        double_quant=double_quant,
        compute_dtype=compute_dtype,
        allow_base_mismatch=allow_base_mismatch,
        key=key,
    )
    output(as_json).result(report, render_verification)
    if not report.passed:
        ctx.exit(3)
