"""`adapters users add NAME --role R --namespace NS` and what the scoped user sees through the CLI: ls, show,
whoami, users ls/show, revoke-role, each in text and --json."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import cli


def run(*args: str, user: str = "tester"):
    return CliRunner().invoke(cli, list(args), env={"ADAPTERS_USER": user}, catch_exceptions=False)


def test_a_namespace_scoped_reviewer_through_the_cli(backend, llama) -> None:
    for name in ("credit/scorer", "risk/model"):
        assert run("push", str(llama.adapter), "--name", name, "--base", str(llama.base)).exit_code == 0
    added = run("users", "add", "bob", "--role", "reviewer", "--namespace", "credit", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["roles"] == ["reviewer@credit"]
    assert (
        "bob: roles reviewer@credit" in run("users", "add", "bob", "--role", "reviewer", "--namespace", "credit").stdout
    )

    listed = json.loads(run("ls", "--json", user="bob").stdout)
    assert [v["name"] for v in listed] == ["credit/scorer"]
    hidden, missing = run("show", "risk/model:1", user="bob"), run("show", "risk/nothing:1", user="bob")
    assert hidden.exit_code == missing.exit_code == 1
    assert hidden.output.replace("risk/model", "X") == missing.output.replace("risk/nothing", "X")
    assert run("show", "risk/model:1").exit_code == 0  # tester, the admin, sees it

    me = json.loads(run("whoami", "--json", user="bob").stdout)
    assert me["user"] == "bob" and me["roles"] == [{"role": "reviewer", "namespace": "credit"}]
    assert run("whoami", user="bob").stdout.startswith("bob (reviewer@credit)")
    users = {u["name"]: u for u in json.loads(run("users", "ls", "--json").stdout)}
    assert users["bob"]["roles"] == ["reviewer@credit"]
    assert users["bob"]["role_scopes"] == [{"role": "reviewer", "namespace": "credit"}]
    assert users["tester"]["role_scopes"] == [{"role": "admin", "namespace": None}]
    shown = json.loads(run("users", "show", "bob", "--json").stdout)
    assert [(g["role"], g["namespace"], g["active"]) for g in shown["grants"]] == [("reviewer", "credit", True)]
    assert "reviewer@credit" in run("users", "show", "bob").stdout

    refused = run("users", "add", "carol", "--role", "admin", "--namespace", "credit")
    assert refused.exit_code == 1 and "admin is never granted for one namespace" in refused.output
    wrong = run("users", "revoke-role", "bob", "reviewer")
    assert wrong.exit_code == 1 and "pass --namespace to revoke reviewer@credit" in wrong.output
    revoked = run("users", "revoke-role", "bob", "reviewer", "--namespace", "credit", "--json")
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["roles"] == []
    assert json.loads(run("ls", "--json", user="bob").stdout) == []  # confined to credit, now to nothing
    assert run("audit", "verify").exit_code == 0
