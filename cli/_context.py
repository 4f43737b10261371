"""What every command shares: the lazily opened registry of one invocation and the common options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli._output import Output

if TYPE_CHECKING:
    from registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["State", "json_option", "key_option", "out_option", "output", "registry"]


class State:
    """The registry one invocation opens, on first use (``--help`` opens nothing): the embedded one, or
    the server ``--registry`` / ``ADAPTERS_REGISTRY`` names."""

    def __init__(self, home: str | None, registry_url: str | None = None) -> None:
        self.home = home
        self.registry_url = registry_url
        self._registry: Any = None

    def registry(self) -> Registry:
        if self._registry is None:
            if self.registry_url:
                self._registry = self.remote(self.registry_url)
            else:
                from registry import Registry

                self._registry = Registry(self.home)
        return self._registry  # type: ignore[no-any-return]

    def remote(self, url: str) -> Any:
        """The server at ``url``, with ADAPTERS_TOKEN or the token `adapters login` stored for it; the actor
        is the token's user, so ADAPTERS_USER is ignored (with a warning when set)."""
        import os

        from cli._output import warn
        from registry import Credentials, RemoteRegistry, Settings

        if os.environ.get("ADAPTERS_USER"):
            warn(f"ADAPTERS_USER={os.environ['ADAPTERS_USER']} is ignored: against {url} you act as your token's user")
        settings = Settings.from_env(self.home)
        token = os.environ.get("ADAPTERS_TOKEN")
        if not token:
            stored = Credentials(settings.config_dir).get(url)
            token = stored.token if stored is not None else None
        return RemoteRegistry(url, token, settings=settings)

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()


def registry(ctx: click.Context) -> Registry:
    state: State = ctx.find_root().obj
    return state.registry()


def output(as_json: bool) -> Output:
    return Output(as_json)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout.")(f)


def key_option(f: F) -> F:
    return click.option(
        "--key",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Your Ed25519 private key, to sign the action (default: $ADAPTERS_KEY).",
    )(f)


class _Option(click.Option):
    """An option whose old spellings still work but are not shown in ``--help``."""

    def __init__(self, *args: Any, hidden_aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = hidden_aliases

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def out_option(help: str, *, name: str = "out", aliases: tuple[str, ...] = (), **kwargs: Any) -> Callable[[F], F]:
    """``-o/--out``: the one spelling every command that writes takes; ``aliases`` (an earlier spelling,
    e.g. ``--output``) keep working, hidden from ``--help``."""
    return click.option("-o", "--out", *aliases, name, cls=_Option, hidden_aliases=aliases, help=help, **kwargs)
