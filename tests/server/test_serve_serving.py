"""`verify --target` through `adapters serve`: the checks run on the client, the profiles travel with the
report, and the server derives the serving checks again from its stored blobs: a forged one is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Tiny
from serving import Server
from serving import run_remote as _remote

import tinymodels
from registry import Registry


def _post(server: Server, token: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return server.request("POST", path, token, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.mark.parametrize("deployment", ["sqlite-local"], indirect=True)  # the server's rules, not its store
def test_a_forged_serving_check_is_refused_by_the_server(
    server: Server, admin_token: str, llama: Tiny, tmp_path: Path
) -> None:
    from registry.domain.clock import now_iso

    wide = tinymodels.make_adapter("llama", llama.base, tmp_path / "wide", r=32, target_modules=["q_proj"])
    with Registry(user="alice") as alice:
        alice.push(wide, name="w", base=str(llama.base))
    done = _remote(server, admin_token, "verify", "w:1", "--base", str(llama.base), "--mode", "static", "--target",
                   "vllm", "--json")  # fmt: skip
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["serving"][0]["engine"] == "vllm" and report["serving"][0]["max_lora_rank"] == 16
    assert {c["name"]: c["passed"] for c in report["checks"]}["vllm-rank"] is False
    path = "/api/v1/versions/w:1/verifications"
    fresh = {**report, "created_at": now_iso()}
    forged = [{**c, "passed": True} if c["name"] == "vllm-rank" else c for c in fresh["checks"]]
    status, body = _post(server, admin_token, path, {"report": {**fresh, "checks": forged}})
    assert status == 422 and "not the ones the registry derives" in body["message"], body
    status, body = _post(server, admin_token, path, {"report": {**fresh, "serving": []}})
    assert status == 422 and "no serving profile" in body["message"], body
    with Registry(user="alice") as alice:
        stored = alice.show("w:1").verifications
    assert [v.serving[0]["max_lora_rank"] for v in stored] == [16]  # only the genuine report was recorded
