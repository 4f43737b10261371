"""What people read: tables on a 100-column terminal and in a pipe keep refs, digests and
fingerprints whole, let prose give way, and end no line in whitespace."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

#: A realistic name, long enough that a 100-column table has to give way somewhere.
NAME = "support-summarizer-eu-west"
REF = f"{NAME}:1"
COMMENT = "reviewed the eval report, the lineage and the [lineage] notes; fine for the EU customers"


def run(*args: str, columns: int | None = 100) -> object:
    env = {"COLUMNS": str(columns)} if columns else {}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(params=["terminal", "pipe"])
def output_to(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Output to a 100-column terminal (a dumb one: no colour codes) or into a pipe."""
    if request.param == "terminal":
        import click.testing

        monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
        monkeypatch.setenv("TERM", "dumb")
    return str(request.param)


@pytest.fixture
def populated(llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """One version with every kind of record: dataset, eval, verification, signed approval and
    release, a merge; two users with keys."""
    from registry import Registry

    Registry.generate_key(tmp_path / "keys", "tester")
    Registry.generate_key(tmp_path / "keys", "bob")
    monkeypatch.setenv("ADAPTERS_KEY", str(tmp_path / "keys" / "tester.key"))
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps({"q": i}) + "\n" for i in range(20)))
    with Registry() as reg:
        reg.init(admin="tester", public_key=tmp_path / "keys" / "tester.pub")
        reg.add_user("tester", roles=["author", "reviewer", "release-manager", "risk"])
        reg.add_user("bob", roles=["reviewer", "release-manager"], public_key=tmp_path / "keys" / "bob.pub")
        ref = reg.push(
            llama.adapter,
            name=NAME,
            base=str(llama.base),
            quantization="nf4",
            description="summarises support tickets for the enterprise customers in the EU region",
            datasets=[f"name=support-tickets,license=cc-by-4.0,split=train,path={data}"],
            evals={"accuracy": 0.91},
        ).ref
        reg.verify(ref, mode="static")
        reg.review(ref)
        reg.approve(ref, comment=COMMENT)
        reg.release(ref, channel="production", reason="first release for the enterprise customers in the EU")
    return {"out": tmp_path / "merged"}


def _known_hex(*json_outputs: str) -> set[str]:
    """Every digest, fingerprint and hash in the --json outputs (hex, without the sha256: prefix)."""
    found: set[str] = set()
    for text in json_outputs:
        found.update(re.findall(r"(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])", text))
    return found


def _assert_readable(stdout: str, known: set[str], width: int = 100) -> None:
    lines = stdout.splitlines()
    assert lines, "nothing printed"
    # a digest is shown whole or as its first 12 (or 16) hex digits, never broken over lines
    for line in lines:
        for run_ in re.findall(r"[0-9a-f]{8,}", line):
            if not re.search("[a-f]", run_):
                continue  # a number
            assert len(run_) in (12, 16, 64) and any(h.startswith(run_) for h in known), (
                f"a broken or unknown digest {run_!r} in {line!r}"
            )
    for line in lines:
        assert line == line.rstrip(), f"trailing whitespace: {line!r}"
        assert len(line) <= width, f"wider than {width} columns: {line!r}"


COMMANDS = [
    ("ls",),
    ("show", REF),
    ("users", "ls"),
    ("channels", NAME),
    ("audit", "log"),
    ("verify", REF, "--mode", "static"),
    ("policy", "check", REF),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_tables_at_100_columns_keep_identifiers_whole_and_no_trailing_spaces(
    populated, output_to: str, args: tuple[str, ...]
) -> None:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    known = _known_hex(
        run("ls", "--json").stdout,
        run("show", REF, "--json").stdout,
        run("users", "ls", "--json").stdout,
        run("audit", "log", "--json").stdout,
    )
    if args[0] != "users":
        assert any(REF in line for line in result.stdout.splitlines()), result.stdout
    _assert_readable(result.stdout, known)


def test_merge_output_at_100_columns(populated, output_to: str) -> None:
    import hashlib

    result = run("merge", REF, "-o", str(populated["out"]))
    assert result.exit_code == 0, result.stderr
    written = {hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(str(populated["out"])).iterdir()}
    _assert_readable(result.stdout, written)
    assert any(line.split()[:1] == ["model.safetensors"] for line in result.stdout.splitlines())


def test_ls_keeps_the_ref_whole_and_leaves_out_what_does_not_fit(populated, output_to: str) -> None:
    digest = json.loads(run("ls", "--json").stdout)[0]["digest"]
    for columns in (100, 80, 60):
        out = run("ls", columns=columns).stdout
        row = next(line for line in out.splitlines() if REF in line)
        assert digest.removeprefix("sha256:")[:12] in row  # the ref and its digest on one line
        assert "draft" in row or "released" in row
    narrow = run("ls", columns=60).stdout
    assert "left out to fit 60 columns; --json has every field" in " ".join(narrow.split())
    assert "left out" not in run("ls", columns=160).stdout


def test_users_ls_shows_12_hex_digits_of_each_key_whole(populated, output_to: str) -> None:
    users = json.loads(run("users", "ls", "--json").stdout)
    out = run("users", "ls").stdout
    for user in users:
        short = user["key_fingerprint"].removeprefix("sha256:")[:12]
        row = next(line for line in out.splitlines() if line.split("│")[0].strip() == user["name"])
        assert short in row
    assert "sha256:" not in out  # the full value is in --json
    assert json.loads(run("users", "ls", "--json").stdout) == users  # JSON unchanged by the width


def test_user_text_is_shown_as_written_not_read_as_markup(populated) -> None:
    out = run("show", REF, columns=200).stdout
    assert "[lineage] notes" in " ".join(out.split())


def test_piped_output_is_160_columns_unless_columns_says() -> None:
    from cli._output import PIPED_WIDTH, stdout_console

    assert PIPED_WIDTH == 160
    runner = CliRunner()
    with runner.isolation(env={"COLUMNS": None}):
        assert stdout_console().width == 160
    with runner.isolation(env={"COLUMNS": "100"}):
        assert stdout_console().width == 100


def test_trimmed_lines_drops_padding_split_over_writes_and_keeps_colour_codes() -> None:
    from cli._output import TrimmedLines

    sink = io.StringIO()
    out = TrimmedLines(sink)
    out.write("a  ")
    out.write("  \nb\t\n\x1b[1mc \x1b[0m \x1b[0m\n  d")
    out.flush()
    assert sink.getvalue() == "a\nb\n\x1b[1mc\x1b[0m\x1b[0m\n  d"
