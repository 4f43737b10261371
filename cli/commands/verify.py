"""verify: prove that a version fits the exact base it will run on."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, output, registry
from cli._render import render_verification
from registry import types

__all__ = ["verify"]


def _names(values: tuple[str, ...]) -> list[str] | None:
    """``a,b`` ``c`` -> ``[a, b, c]``; None when the option was not given."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def _engines(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    engines = tuple(dict.fromkeys(_names(values) or ()))
    unknown = [e for e in engines if e not in types.SERVING_ENGINES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}; use {', '.join(types.SERVING_ENGINES)}")
    return engines


@click.command()
@click.argument("ref")
@click.option("--base", help="Base model directory or cached Hugging Face id. Default: the base recorded at push.")
@click.option(
    "--mode",
    type=click.Choice(types.VERIFY_MODES),
    default="all",
    show_default=True,
    help="static: safetensors headers only; load: a real load (--quant) with peft and a probe input.",
)
@click.option(
    "--device",
    type=click.Choice(types.DEVICES),
    default="auto",
    show_default=True,
    help="Where the load check runs: auto is CUDA when available, else the CPU.",
)
@click.option(
    "--quant",
    type=click.Choice(types.LOAD_QUANTIZATIONS),
    default="nf4",
    show_default=True,
    help="How the load check loads the base: nf4 or fp4 (4-bit), int8 (LLM.int8), none (its own dtype).",
)
@click.option(
    "--double-quant/--no-double-quant", default=True, show_default=True, help="Double quantization of a 4-bit base."
)
@click.option(
    "--compute-dtype",
    type=click.Choice(types.COMPUTE_DTYPES),
    help="Compute dtype of the quantized layers (default: float32 on the CPU, bfloat16 on CUDA); "
    "with --quant none, the dtype the base is loaded in (default: its own).",
)
@click.option("--allow-base-mismatch", is_flag=True, help="Let a base whose fingerprint differs pass (recorded).")
@click.option(
    "--target",
    "targets",
    multiple=True,
    callback=_engines,
    metavar="ENGINE[,ENGINE]",
    help=f"Also check the rules of a serving engine ({', '.join(types.SERVING_ENGINES)}); repeat it or give a "
    "comma list for several. From the config and headers only, so in every --mode.",
)
@click.option(
    "--max-lora-rank",
    type=click.IntRange(min=1),
    help="The --max-lora-rank the vllm/sglang target starts with (vLLM's default: 16; SGLang's: the largest "
    "rank of the adapters it starts with).",
)
@click.option(
    "--lora-target-modules",
    "lora_target_modules",
    multiple=True,
    metavar="M[,M]",
    help="The --lora-target-modules the vllm/sglang target starts with (comma list or repeated).",
)
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
    targets: tuple[str, ...],
    max_lora_rank: int | None,
    lora_target_modules: tuple[str, ...],
    key: Path | None,
    as_json: bool,
) -> None:
    """Prove that version REF fits the exact base it will run on.

    Exit 0 when every check passes, 3 when a check failed, 1 when it could not run.
    The report is stored with the version either way (adapters show lists it).

    With --target (vllm, sglang, lorax, tgi) it also checks what that engine does with the adapter when it
    loads it: one check per rule (rank within --max-lora-rank, DoRA, biases, modules_to_save, added tokens,
    base-changing initialisations, target modules the engine ignores), each saying how to get past it;
    --max-lora-rank and --lora-target-modules apply to every vllm/sglang target given. The report records
    each engine's profile (its limits and the engine code the rules come from).
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
        targets=targets,
        max_lora_rank=max_lora_rank,
        lora_target_modules=_names(lora_target_modules),
    )
    output(as_json).result(report, render_verification)
    if not report.passed:
        ctx.exit(3)
