"""``adapters ls`` and ``adapters show`` read the records only: with the blob store in S3 at an
endpoint where nothing listens they still work, and boto3 is never imported."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from registry import Registry

_RUN = """
import json, sys
from click.testing import CliRunner
from cli.main import cli

out = {}
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli, args)
    out[" ".join(args)] = {"exit": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
out["imported"] = [m for m in ("boto3", "botocore") if m in sys.modules]
print(json.dumps(out))
"""


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _in_a_process(commands: list[list[str]], endpoint: str) -> dict:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(commands)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.s3
def test_ls_and_show_never_touch_the_blob_store(s3, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTERS_STORE", s3.url())
    with Registry() as reg:
        reg.push(llama.adapter, name="a", base=str(llama.base))
        reg.verify("a", str(llama.base), mode="static")
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    out = _in_a_process([["ls", "--json"], ["ls"], ["show", "a:1", "--json"], ["show", "a:1"]], nowhere)
    assert out["imported"] == []
    for args in ("ls --json", "ls", "show a:1 --json", "show a:1"):
        assert out[args]["exit"] == 0, out[args]["stderr"]
    assert [v["ref"] for v in json.loads(out["ls --json"]["stdout"])] == ["a:1"]
    shown = json.loads(out["show a:1 --json"]["stdout"])
    assert shown["ref"] == "a:1" and len(shown["verifications"]) == 1
    assert "a:1" in out["ls"]["stdout"] and "adapter_model.safetensors" in out["show a:1"]["stdout"]


@pytest.mark.s3
def test_the_closed_endpoint_is_really_where_the_blobs_are(s3, llama, tmp_path: Path, monkeypatch) -> None:
    """The control for the test above: a command that needs the blobs fails there, naming the endpoint."""
    monkeypatch.setenv("ADAPTERS_STORE", s3.url())
    with Registry() as reg:
        reg.push(llama.adapter, name="a", base=str(llama.base))
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    out = _in_a_process([["verify", "a:1", "--base", str(llama.base), "--mode", "static"]], nowhere)
    failed = out[f"verify a:1 --base {llama.base} --mode static"]
    assert failed["exit"] == 1 and f"cannot reach the S3 endpoint {nowhere}" in failed["stderr"]
    assert out["imported"] == ["boto3", "botocore"]
