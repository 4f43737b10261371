"""What a new user trips over first: not-found messages that suggest the close match, built-in policies
by name, a misspelled name in `audit log`, the wording of messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from registry.domain.suggest import suggestions


def run(*args: str, user: str | None = None):
    env = {"ADAPTERS_USER": user} if user else None
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def released(backend, llama) -> None:
    assert run("push", str(llama.adapter), "--name", "support/ticket-embedder").exit_code == 0
    assert run("review", "support/ticket-embedder:1").exit_code == 0
    assert run("approve", "support/ticket-embedder:1").exit_code == 0
    assert run("release", "support/ticket-embedder:1", "--channel", "production").exit_code == 0


def test_suggestions_rank_namespace_then_prefix_then_spelling() -> None:
    known = ["support/ticket-embedder", "support/ticket-embedding", "fraud/scorer"]
    assert suggestions("ticket-embedder", known)[0] == "support/ticket-embedder"
    assert suggestions("prod", ["production", "staging"]) == ["production"]
    assert suggestions("fraud/scorre", known) == ["fraud/scorer"]
    assert suggestions("zzz", known) == []


def test_a_name_in_another_namespace_is_suggested(released) -> None:
    shown = run("show", "ticket-embedder")
    assert shown.exit_code == 1
    assert "does not exist; did you mean 'support/ticket-embedder'?" in shown.stderr


def test_a_channel_prefix_suggests_the_channel_not_creating_one(released) -> None:
    shown = run("show", "support/ticket-embedder@prod")
    assert shown.exit_code == 1
    assert "did you mean support/ticket-embedder@production?" in shown.stderr
    assert "--channel prod" not in shown.stderr
    rollback = run("rollback", "support/ticket-embedder", "--channel", "prodution")
    assert rollback.exit_code == 1 and "did you mean 'support/ticket-embedder@production'?" in rollback.stderr
    # nothing close: the way out is still to release there
    far = run("show", "support/ticket-embedder@canary")
    assert far.exit_code == 1 and "adapters release support/ticket-embedder:N --channel canary" in far.stderr


def test_audit_log_of_a_misspelled_name_fails_like_every_other_command(released) -> None:
    log = run("audit", "log", "support/ticket-embeder")
    assert log.exit_code == 1 and log.stdout == ""
    assert "does not exist; did you mean 'support/ticket-embedder'?" in log.stderr
    assert run("audit", "log", "support/ticket-embeder:1").exit_code == 1
    assert json.loads(run("audit", "log", "support/ticket-embedder", "--json").stdout)


def test_builtin_policies_are_set_by_name(backend, tmp_path: Path) -> None:
    assert run("users", "add", "tester", "--role", "admin").exit_code in (0, 1)  # the first user may exist already
    set_default = run("policy", "set", "default", "--json")
    assert set_default.exit_code == 0, set_default.stderr
    assert json.loads(run("policy", "show", "--json").stdout)["name"] == "default"
    # regulated requires signatures: refused without a root of trust, with the way out
    regulated = run("policy", "set", "regulated")
    assert regulated.exit_code != 0 and "adapters init" in regulated.stderr
    typo = run("policy", "set", "regulatd")
    assert typo.exit_code == 1 and "did you mean 'regulated'?" in typo.stderr and "built in: default" in typo.stderr
    # a file of that name wins over the built-in one
    (tmp_path / "default").write_text("name: mine\n")
    mine = CliRunner().invoke(cli, ["policy", "set", str(tmp_path / "default"), "--json"])
    assert mine.exit_code == 0 and json.loads(mine.stdout)["name"] == "mine"


def test_policy_show_help_lists_the_builtin_policies() -> None:
    shown = " ".join(run("policy", "show", "--help").stdout.split())
    assert "default" in shown and "regulated" in shown and "adapters policy set NAME" in shown


def test_names_are_refused_with_the_right_article(backend, llama) -> None:
    bad = run("push", str(llama.adapter), "--name", "Bad Name")
    assert bad.exit_code in (1, 2) and "an adapter name is" in bad.stderr and "a adapter" not in bad.stderr


def test_a_misspelled_user_is_suggested(backend) -> None:
    assert run("users", "add", "bob", "--role", "reviewer").exit_code == 0
    shown = run("users", "show", "bbo")
    assert shown.exit_code == 1 and "no user 'bbo'; did you mean 'bob'?" in shown.stderr
    assert "bob" in run("users", "show", "bob").stdout


WRITERS = (("pull",), ("merge",), ("release",), ("audit", "checkpoint"), ("audit", "report"), ("keys", "generate"))


@pytest.mark.parametrize("path", WRITERS, ids=" ".join)
def test_every_command_that_writes_takes_o_and_out(path: tuple[str, ...]) -> None:
    import click

    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    out = next(p for p in command.params if p.name in ("out", "outs"))
    assert {"-o", "--out"} <= set(out.opts)
    shown = run(*path, "--help").stdout
    assert "-o, --out" in shown and "--output" not in shown


def test_pull_keeps_its_old_output_spelling(backend, llama, tmp_path: Path) -> None:
    assert run("push", str(llama.adapter), "--name", "s").exit_code == 0
    for i, spelling in enumerate(("-o", "--out", "--output")):
        result = run("pull", "s:1", spelling, str(tmp_path / f"out{i}"))
        assert result.exit_code == 0, result.stderr
    (tmp_path / "file").write_text("x")
    onto_file = run("pull", "s:1", "-o", str(tmp_path / "file"))
    assert onto_file.exit_code == 1 and "is a file, not a directory" in onto_file.stderr
