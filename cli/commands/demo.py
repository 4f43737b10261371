"""demo: the main job end to end on a tiny model built on the spot."""

from __future__ import annotations

import click

__all__ = ["demo"]


@click.command()
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
    from cli.main import cli

    run_demo(cli, home=demo_home, keep=keep)
