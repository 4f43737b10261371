"""The `adapters` command: JSON shapes, exit codes, streams, help, start-up imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from imports import heavy_imports

from cli.main import cli


def run(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def pushed(backend, cli_run, llama) -> dict:
    result = cli_run("push", str(llama.adapter), "--name", "support", "--base", str(llama.base), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _all_commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


def test_every_command_and_subcommand_has_help(tmp_path: Path) -> None:
    seen = set()
    for path, command in _all_commands(cli):
        seen.add(" ".join(path))
        assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"
        result = run(*path, "--help")
        assert result.exit_code == 0
        assert command.help.strip().splitlines()[0][:40] in " ".join(result.stdout.split())
        for param in command.params:
            if param.name != "help" and not getattr(param, "help", "x") and param.param_type_name == "option":
                pytest.fail(f"option {param.opts} of {' '.join(path)} has no help")
    assert {
        "push",
        "pull",
        "ls",
        "show",
        "verify",
        "merge",
        "release",
        "audit report",
        "policy check",
        "users add",
    } <= seen


def test_push_json(pushed: dict, cli_run) -> None:
    assert pushed["name"] == "support" and pushed["version"] == 1 and pushed["ref"] == "support:1"
    assert pushed["digest"].startswith("sha256:")
    assert set(pushed) >= {"name", "version", "digest", "size", "files", "base", "warnings"}


def test_push_human_output_prints_ref_and_digest(backend, cli_run, llama) -> None:
    result = cli_run("push", str(llama.adapter), "--name", "support")
    assert result.exit_code == 0
    first_line = result.stdout.splitlines()[0].split()
    assert first_line[0] == "support:1" and first_line[1].startswith("sha256:")


def test_show_json_keys(pushed: dict, cli_run) -> None:
    result = cli_run("show", "support:1", "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert set(shown) >= {
        "name",
        "version",
        "digest",
        "state",
        "created_at",
        "created_by",
        "peft",
        "base",
        "quantization",
        "datasets",
        "evals",
        "files",
    }
    assert shown["digest"] == pushed["digest"] and shown["state"] == "draft"
    assert set(shown["peft"]) >= {"type", "r", "lora_alpha", "target_modules", "use_rslora", "use_dora"}
    assert set(shown["base"]) >= {"name", "revision", "fingerprint"}
    assert all(set(f) == {"path", "sha256", "size"} for f in shown["files"])
    human = cli_run("show", "support:1")
    assert human.exit_code == 0 and pushed["digest"] in human.stdout


def test_ls_json_and_filters(pushed: dict, cli_run) -> None:
    rows = json.loads(cli_run("ls", "--json").stdout)
    assert [r["ref"] for r in rows] == ["support:1"]
    assert json.loads(cli_run("ls", "--json", "--min-rank", "5").stdout) == []
    assert "support:1" in cli_run("ls").stdout


def test_pull_json(pushed: dict, cli_run, tmp_path: Path) -> None:
    out = tmp_path / "pulled"
    result = cli_run("pull", "support", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    pulled = json.loads(result.stdout)
    assert pulled["digest"] == pushed["digest"] and pulled["path"] == str(out)
    again = cli_run("pull", "support", "-o", str(out))
    assert again.exit_code == 1 and "--force" in again.stderr
    assert cli_run("pull", "support", "-o", str(out), "--force").exit_code == 0


def test_errors_go_to_stderr_with_exit_1_and_nothing_on_stdout(backend, cli_run, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for args in (["push", str(tmp_path / "empty"), "--name", "x"], ["show", "nope:1"], ["show", "Bad Ref"]):
        result = cli_run(*args, "--json")
        assert result.exit_code == 1, args
        assert result.stdout == ""
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(backend, cli_run, llama) -> None:
    assert cli_run("push", str(llama.adapter)).exit_code == 2  # --name missing
    assert cli_run("push", str(llama.adapter), "--name", "x", "--quantization", "int3").exit_code == 2
    assert cli_run("frobnicate").exit_code == 2


@pytest.mark.parametrize(
    ("flags", "recorded"),
    [
        (["--quantization", "nf4"], {"method": "nf4", "double_quant": False, "compute_dtype": "float32"}),
        (
            ["--quantization", "nf4", "--double-quant", "--compute-dtype", "bfloat16"],
            {"method": "nf4", "double_quant": True, "compute_dtype": "bfloat16"},
        ),
        (
            ["--quantization", "fp4", "--no-double-quant"],
            {"method": "fp4", "double_quant": False, "compute_dtype": "float32"},
        ),
        ([], {"method": "none", "double_quant": None, "compute_dtype": None}),
    ],
    ids=["nf4-defaults-written-down", "nf4-stated", "fp4", "none"],
)
def test_the_recorded_quantization_is_complete(backend, cli_run, llama, flags: list[str], recorded: dict) -> None:
    """What a push does not say about the 4-bit base is recorded as bitsandbytes' defaults, never null."""
    assert cli_run("push", str(llama.adapter), "--name", "q", *flags).exit_code == 0
    assert json.loads(cli_run("show", "q", "--json").stdout)["quantization"] == recorded


def test_double_quant_without_a_4bit_base_is_a_usage_error(backend, cli_run, llama) -> None:
    result = cli_run("push", str(llama.adapter), "--name", "q", "--double-quant")
    assert result.exit_code == 2
    assert "--quantization nf4" in result.stderr


def test_warnings_go_to_stderr_and_json_stays_clean(backend, cli_run, llama) -> None:
    result = cli_run("push", str(llama.adapter), "--name", "x", "--base", "org/not-cached", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["base"]["fingerprint"] is None
    assert "warning: base 'org/not-cached'" in result.stderr


def test_debug_shows_a_traceback(backend) -> None:
    result = CliRunner().invoke(cli, ["show", "nope"], env={"ADAPTERS_DEBUG": "1"})
    assert result.exit_code == 1 and "Traceback" in result.stderr


def test_home_option(tmp_path: Path, llama, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-home"
    assert run("--home", str(other), "push", str(llama.adapter), "--name", "x").exit_code == 0
    assert (other / "registry.db").exists() and (other / "blobs" / "sha256").is_dir()
    assert json.loads(run("ls", "--json").stdout) == []  # the default home did not see it
    assert len(json.loads(run("--home", str(other), "ls", "--json").stdout)) == 1


def test_meta_file_with_flags_overriding(backend, llama, tmp_path: Path) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text(
        "quantization: nf4\ndescription: from file\nevals: {accuracy: 0.5}\ndatasets: [{name: d, license: mit}]\n"
    )
    result = run(
        "push",
        str(llama.adapter),
        "--name",
        "x",
        "--meta",
        str(meta),
        "--eval",
        "accuracy=0.9",
        "--dataset",
        "name=e,license=cc0",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(run("show", "x", "--json").stdout)
    assert shown["quantization"]["method"] == "nf4" and shown["description"] == "from file"
    assert [(e["metric"], e["value"]) for e in shown["evals"]] == [("accuracy", 0.9)]
    assert sorted(d["name"] for d in shown["datasets"]) == ["d", "e"]


@pytest.mark.parametrize("args", [["--help"], ["ls", "--json"], ["show", "x", "--json"], ["ls"]])
def test_light_commands_do_not_import_torch(backend, llama, args: list[str]) -> None:
    run("push", str(llama.adapter), "--name", "x")
    _, heavy = heavy_imports(args)
    assert heavy == []


def test_the_remote_client_loads_no_database_layer_nor_server_stack() -> None:
    """A client of the registry server needs httpx and the domain: not SQLAlchemy, the server or torch."""
    code = (
        "import sys\nimport registry.remote.client\n"
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'fastapi', 'uvicorn', 'torch', 'boto3') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert "HEAVY=" in proc.stderr, proc.stderr
    assert proc.stderr.rsplit("HEAVY=", 1)[1].strip() == ""


def _adapters(*args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    """``adapters ARGS`` in a process of its own, in an environment like a user's shell (the tests'
    HF_HUB_DISABLE_PROGRESS_BARS=1 removed, so the libraries' progress bars would show)."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    if debug:
        env["ADAPTERS_DEBUG"] = "1"
    code = "from cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)


#: What transformers, peft and bitsandbytes print on their own (progress bars, warnings, log lines).
CHATTER = ("Loading weights", "Writing model shards", "Warning", "Failed to load", "it/s]")


def test_verify_prints_no_library_chatter_unless_adapters_debug(sqlite_reg, llama) -> None:
    assert run("push", str(llama.adapter), "--name", "a", "--base", str(llama.base)).exit_code == 0
    quiet = _adapters("verify", "a", "--mode", "all", "--device", "cpu")
    assert quiet.returncode == 0, quiet.stderr
    assert "adapter-load" in quiet.stdout and quiet.stderr == "", quiet.stderr
    debug = _adapters("verify", "a", "--mode", "all", "--device", "cpu", debug=True)
    assert debug.returncode == 0, debug.stderr
    assert any(noise in debug.stderr for noise in CHATTER), debug.stderr  # the libraries' own output, not hidden


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = _adapters("demo")
    assert result.returncode == 0, result.stderr
    assert not [noise for noise in CHATTER if noise in result.stderr], result.stderr
    out = result.stdout
    for command in (
        "$ adapters push",
        "$ adapters ls",
        "$ adapters show",
        "$ adapters verify",
        "$ adapters release",
        "$ adapters rollback",
        "$ adapters pull",
        "$ adapters audit verify",
    ):
        assert command in out
    assert "max |logits difference| = 0" in out
    assert "audit chain intact" in out


def test_verify_exit_codes(backend, cli_run, llama, tmp_path: Path) -> None:
    """Embedded and through a real `adapters serve`: the checks run here, the server records the reports."""
    import tinymodels

    cli_run("push", str(llama.adapter), "--name", "a", "--base", str(llama.base))
    ok = cli_run("verify", "a", "--base", str(llama.base), "--mode", "static", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["passed"] is True
    other = tinymodels.save_base("llama", tmp_path / "other", seed=9)
    failed = cli_run("verify", "a", "--base", str(other), "--mode", "static")
    assert failed.exit_code == 3
    assert "✗ FAIL  base-fingerprint" in failed.stdout and "FAILED" in failed.stdout
    missing = cli_run("verify", "a", "--base", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    cuda = cli_run("verify", "a", "--base", str(llama.base), "--mode", "load", "--device", "cuda")
    import torch

    if not torch.cuda.is_available():
        assert cuda.exit_code == 1 and "no CUDA device" in cuda.stderr
    shown = json.loads(cli_run("show", "a", "--json").stdout)
    assert [v["passed"] for v in shown["verifications"]] == [True, False]  # the run that could not start left no report


def _hostile(case: str, llama, tmp_path: Path) -> list[str]:
    """The command line of one hostile input (set up under ``tmp_path``)."""
    adapter = tmp_path / "adapter"
    import shutil

    shutil.copytree(llama.adapter, adapter)
    if case == "yaml-bomb":
        levels = ['  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
        levels += [f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
        (tmp_path / "meta.yaml").write_text("training:\n" + "".join(levels))
        return ["push", str(adapter), "--name", "a", "--meta", str(tmp_path / "meta.yaml")]
    if case == "dataset-dev-zero":
        return ["push", str(adapter), "--name", "a", "--dataset", "name=x,path=/dev/zero"]
    if case == "config-nan":
        text = (adapter / "adapter_config.json").read_text().replace('"lora_alpha": 8', '"lora_alpha": NaN')
        (adapter / "adapter_config.json").write_text(text)
        return ["push", str(adapter), "--name", "a"]
    if case == "joblib":
        (adapter / "model.joblib").write_bytes(b"\x80\x04K\x01.")
        return ["push", str(adapter), "--name", "a"]
    run("push", str(llama.adapter), "--name", "a")
    if case == "pull-onto-symlink":
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
        return ["pull", "a", "-o", str(tmp_path / "link"), "--force"]
    (tmp_path / "file").write_text("mine")
    return ["pull", "a", "-o", str(tmp_path / "file")]


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("yaml-bomb", "anchors and aliases"),
        ("dataset-dev-zero", "is a character device"),
        ("config-nan", "non-finite number NaN"),
        ("joblib", "pickle"),
        ("pull-onto-symlink", "is a symbolic link"),
        ("pull-onto-a-file", "is a file, not a directory"),
    ],
)
def test_hostile_input_exits_1_with_a_message(sqlite_reg, llama, tmp_path: Path, case: str, fragment: str) -> None:
    result = run(*_hostile(case, llama, tmp_path))
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("error: ") and fragment in result.stderr, result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert [v.version for v in sqlite_reg.ls()] == (
        [] if case.startswith(("yaml", "dataset", "config", "job")) else [1]
    )
