"""tag, untag, note: what people add to a version after its push (appended and audited)."""

from __future__ import annotations

from pathlib import Path

import click

from cli._context import json_option, key_option, output, registry
from cli._render_people import render_annotated

__all__ = ["note", "tag", "untag"]


@click.command()
@click.argument("ref")
@click.argument("tags", nargs=-1, required=True, metavar="KEY=VALUE...")
@key_option
@json_option
@click.pass_context
def tag(ctx: click.Context, ref: str, tags: tuple[str, ...], key: Path | None, as_json: bool) -> None:
    """Set tags on version REF (setting a key again records the new value; `ls --tag KEY=VALUE` filters)."""
    output(as_json).result(registry(ctx).tag(ref, tags, key=key), render_annotated)


@click.command()
@click.argument("ref")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@key_option
@json_option
@click.pass_context
def untag(ctx: click.Context, ref: str, keys: tuple[str, ...], key: Path | None, as_json: bool) -> None:
    """Remove tags from version REF (the removal is recorded; `show --json` keeps the tag history)."""
    output(as_json).result(registry(ctx).untag(ref, keys, key=key), render_annotated)


@click.command()
@click.argument("ref")
@click.argument("text")
@key_option
@json_option
@click.pass_context
def note(ctx: click.Context, ref: str, text: str, key: Path | None, as_json: bool) -> None:
    """Append a note to version REF (notes are never edited; the description stays in the manifest)."""
    output(as_json).result(registry(ctx).note(ref, text, key=key), render_annotated)
