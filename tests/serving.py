"""A real `adapters serve` process for tests: on 127.0.0.1 and a free port, with the test's environment
(its database and store), stopped when the test ends; its access log is kept for inspection."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ADAPTERS = str(Path(sys.executable).parent / "adapters")


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 180, fresh: bool = False
) -> subprocess.CompletedProcess[str]:
    """``adapters ARGS`` in the test's environment plus ``env``: in this process by click's runner (the same
    command, output and exit code, without a new interpreter's start-up), or with ``fresh`` as a subprocess."""
    if fresh:
        full = {**os.environ, **(env or {})}
        return subprocess.run(
            [ADAPTERS, *args], capture_output=True, text=True, env=full, input=stdin, timeout=timeout
        )  # fmt: skip
    from click.testing import CliRunner

    from cli.main import cli

    done = CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)
    return subprocess.CompletedProcess([ADAPTERS, *args], done.exit_code, done.stdout, done.stderr)


def run_remote(server: Server, token: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``adapters --registry URL ARGS`` with ``token`` (``env``: more variables, e.g. a spoofed ADAPTERS_USER)."""
    return run_cli("--registry", server.url, *args, env={"ADAPTERS_TOKEN": token, **env})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, log: Path, env: dict[str, str] | None = None, workers: int = 1, port: int | None = None) -> None:
        """``port``: the one to listen on (a restarted server at the same URL), default a free one."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [ADAPTERS, "serve", "--port", str(self.port), "--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self._wait()

    def _wait(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"adapters serve exited with {self.proc.returncode}: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"adapters serve did not answer within {timeout}s: {self.log_path.read_text()}")

    def get(self, path: str, token: str | None = None, **headers: str) -> tuple[int, Any]:
        """GET ``path``: the status and the decoded JSON body."""
        return self.request("GET", path, token, None, headers)

    def request(
        self, method: str, path: str, token: str | None, body: bytes | None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"{self.url}{path}", data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            data = e.read()
            try:
                return e.code, json.loads(data)
            except ValueError:
                return e.code, data.decode(errors="replace")

    def access_log(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
