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
from typing import Any

import click

from cli._context import State

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
            from registry import RegistryError

            debug = os.environ.get("ADAPTERS_DEBUG", "") not in ("", "0")
            if debug:
                traceback.print_exc()
            if isinstance(exc, RegistryError):
                raise _Failure(exc.message, exc.exit_code) from exc
            raise _Failure(
                f"unexpected {type(exc).__name__}: {exc} (run again with ADAPTERS_DEBUG=1 for a traceback)", 1
            ) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="ADAPTERS_HOME",
    help="Registry home (SQLite file and blob store). Default: $ADAPTERS_HOME or ~/.adapters.",
)
@click.option(
    "--registry",
    "registry_url",
    envvar="ADAPTERS_REGISTRY",
    help="A team registry's server URL (adapters serve); default: $ADAPTERS_REGISTRY, else the embedded registry.",
)
@click.version_option(package_name="adapter-registry", prog_name="adapters")
@click.pass_context
def cli(ctx: click.Context, home: str | None, registry_url: str | None) -> None:
    """A registry and governance toolkit for PEFT adapters (LoRA, QLoRA, DoRA).

    Store adapters immutably with their facts, pull them back verified.
    Configuration: ADAPTERS_HOME, ADAPTERS_DB, ADAPTERS_STORE, ADAPTERS_USER; for a team registry's
    server, ADAPTERS_REGISTRY (or --registry) and ADAPTERS_TOKEN (or `adapters login`).
    """
    state = State(home, registry_url or None)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    cli(prog_name="adapters")


def _register() -> None:
    """Every command, one module per concept (imported here, not for their side effects)."""
    from cli.commands import (
        annotations,
        audit,
        catalog,
        demo,
        evals,
        maintenance,
        policy,
        releases,
        server,
        tokens,
        users,
        verify,
    )

    for command in (
        catalog.push, catalog.pull, catalog.ls_, catalog.show, verify.verify, releases.review, releases.approve,
        releases.reject, releases.release, releases.merge, releases.rollback, releases.deprecate, releases.revoke,
        releases.channels, evals.eval_group, annotations.tag, annotations.untag, annotations.note, policy.policy, users.init, users.users, users.keys, audit.audit, maintenance.fsck, maintenance.gc, tokens.tokens, server.serve, server.login, server.logout, server.whoami, demo.demo,
    ):  # fmt: skip
        cli.add_command(command)


_register()
