"""The API fuzzed through its own OpenAPI description (schemathesis): every operation, with generated
paths, queries, headers and bodies, as an admin and without a token. The server must answer each with
a client error or a success, never a 5xx or a dropped connection; every error body has the one JSON
shape; and an unauthenticated request gets 401 everywhere but the three open endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from serving import Server

from registry import Registry

#: Endpoints that answer without a token: health, readiness, the API description (and nothing else).
OPEN = {"/healthz", "/readyz", "/openapi.json"}


@pytest.fixture
def fuzzed(tmp_path: Path, llama: Any) -> dict[str, Any]:
    """Two servers over a registry with one pushed adapter, and an admin's token: one for the admin's calls,
    one for the unauthenticated ones (whose failures the second rate-limits, per process and address)."""
    with Registry(user="operator") as operator:
        token = operator.create_token("fuzz", role="admin").secret
    with Registry(user="fuzz") as fuzz:
        fuzz.push(llama.adapter, name="credit/scorer", base=str(llama.base))
    server = Server(tmp_path / "serve.log")
    try:
        anonymous = Server(tmp_path / "anonymous.log")
    except BaseException:
        server.stop()
        raise
    try:
        yield {"server": server, "anonymous": anonymous, "token": token}
    finally:
        server.stop()
        anonymous.stop()


def _check(response: Any, case: Any) -> None:
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where} answered {response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert set(body) == {"error", "message", "exit_code"}, (where, body)
        assert body["message"] and "Traceback" not in body["message"], (where, body)


def test_no_generated_request_makes_the_server_fail(fuzzed: dict[str, Any]) -> None:
    """Valid requests (POSITIVE) and requests that break the schema (NEGATIVE), for every operation."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation import GenerationMode

    server: Server = fuzzed["server"]
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 40, [o.label for o in operations]  # the whole API, not a part of it
    auth = {"Authorization": f"Bearer {fuzzed['token']}"}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode))
            @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def fuzz(case: Any) -> None:
                _check(case.call(base_url=server.url, headers=auth, timeout=30), case)
                anonymous = case.call(base_url=fuzzed["anonymous"].url, timeout=30)
                _check(anonymous, case)
                if case.path not in OPEN:
                    assert anonymous.status_code in (401, 413, 429), (case.method, case.formatted_path, anonymous.text)

            try:
                fuzz()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # no parameter to break: nothing to send
