"""Shared fixtures: an isolated environment for every test, registries on SQLite and PostgreSQL and
on an S3-compatible object store (moto's server, on 127.0.0.1), and tiny real models with real peft
adapters built once per session."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from serving import Server

import tinymodels

#: Set by .ci/run; without it the PostgreSQL variants are skipped with this reason.
POSTGRES_ENV = "ADAPTERS_TEST_POSTGRES_URL"
_NO_POSTGRES = f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the real home, the real Hugging Face cache or the network."""
    home = tmp_path / "adapters-home"
    for var in ("ADAPTERS_DB", "ADAPTERS_STORE", "ADAPTERS_DEBUG", "ADAPTERS_KEY"):
        monkeypatch.delenv(var, raising=False)
    # Nor the terminal's width: piped output is COLUMNS wide (pytest-xdist's workers set COLUMNS=80).
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("ADAPTERS_HOME", str(home))
    monkeypatch.setenv("ADAPTERS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ADAPTERS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("ADAPTERS_REGISTRY_KEY", raising=False)
    monkeypatch.setenv("ADAPTERS_USER", "tester")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # huggingface_hub reads its cache location once, at import: point the constant here too.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    # Nor the real AWS configuration: only the `s3` fixture gives an endpoint and credentials.
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws" / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests need CUDA: skip them, saying why, where there is none. A CLI test runs through a
    server over SQLite only (the server's own tests cover PostgreSQL with S3): other pairs are dropped."""
    remote_elsewhere = [
        item
        for item in items
        if getattr(item, "callspec", None) is not None
        and item.callspec.params.get("cli_run") == "remote"
        and item.callspec.params.get("backend", "sqlite") != "sqlite"
    ]
    if remote_elsewhere:
        config.hook.pytest_deselected(items=remote_elsewhere)
        items[:] = [item for item in items if item not in remote_elsewhere]
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Skips for one reason (no PostgreSQL URL, no GPU) are reported as one line, ``SKIPPED [N] ...``, not
    one line per test: their location becomes this file's, so ``-ra`` groups them."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
        if _NO_POSTGRES in reason or "needs a CUDA GPU" in reason:
            report.longrepr = ("tests/conftest.py", 0, reason)


# -- the S3-compatible object store ---------------------------------------------------------

S3_BUCKET = "adapters-test"


@dataclass
class S3:
    """The test object store: its endpoint, a bucket created for the test, and a boto3 client."""

    endpoint: str
    bucket: str
    client: object

    def url(self, prefix: str = "team") -> str:
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 and a free port, one per test process (pytest-xdist worker)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """An empty server (reset) with one bucket; the AWS variables point every client in and out of
    this process at it, with test credentials from the environment."""
    import urllib.request

    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST"), timeout=30).close()
    no_iam = urllib.request.Request(  # IAM checks off, whatever an earlier test left
        f"{s3_server}/moto-api/reset-auth", data=b"inf", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(no_iam, timeout=30).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    client = boto3.client("s3")
    client.create_bucket(Bucket=S3_BUCKET)
    return S3(s3_server, S3_BUCKET, client)


# -- databases and stores ----------------------------------------------------------------------


@dataclass
class Backend:
    """Where a test's registry keeps its records and blobs: the URL to give ADAPTERS_DB (None = the
    SQLite default) and to give ADAPTERS_STORE (None = the local directory default)."""

    name: str
    db_url: str | None
    store_url: str | None = None


def _postgres_schema_url(base_url: str, schema: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test (dropped afterwards)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(_NO_POSTGRES)
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _postgres_schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses ``backend`` runs on SQLite, on PostgreSQL, and on SQLite with the blobs in S3;
    one marked ``local_store`` (its subject is the local directory's files) skips the S3 run."""
    if "backend" not in metafunc.fixturenames:
        return
    params: list[object] = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
    if metafunc.definition.get_closest_marker("local_store") is None:
        params.append(pytest.param("s3", marks=pytest.mark.s3))
    metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The records in SQLite or PostgreSQL (ADAPTERS_DB), the blobs in a directory or a bucket (ADAPTERS_STORE)."""
    if request.param == "sqlite":
        return Backend("sqlite", None)
    if request.param == "s3":
        s3: S3 = request.getfixturevalue("s3")
        monkeypatch.setenv("ADAPTERS_STORE", s3.url())
        return Backend("s3", None, s3.url())
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("ADAPTERS_DB", url)
    return Backend("postgres", url)


@pytest.fixture
def reg(backend: Backend) -> Iterator[object]:
    from registry import Registry

    with Registry() as r:
        yield r


@pytest.fixture
def sqlite_reg() -> Iterator[object]:
    """A registry on the embedded default only, for tests whose subject is not the database."""
    from registry import Registry

    with Registry() as r:
        yield r


# -- tiny models -------------------------------------------------------------------------


@dataclass
class Tiny:
    """A base model directory and a LoRA adapter saved by peft for it."""

    kind: str
    base: Path
    adapter: Path

    def copy_adapter(self, dest: Path) -> Path:
        shutil.copytree(self.adapter, dest)
        return dest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tiny]:
    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for kind in tinymodels.KINDS:
        base = tinymodels.save_base(kind, root / f"{kind}-base")
        adapter = tinymodels.make_adapter(kind, base, root / f"{kind}-lora")
        out[kind] = Tiny(kind, base, adapter)
    return out


@pytest.fixture
def llama(tiny_models: dict[str, Tiny]) -> Tiny:
    return tiny_models["llama"]


# -- a team of users with roles and keys, under the regulated policy -------------------------


class Team:
    """Registries acting as different users on one database, each user with an Ed25519 key.

    alice initialises the registry's root of trust with her key (``adapters init``), so signed
    governance holds; each user with a registered key signs with it by default (as ADAPTERS_KEY would).
    """

    ROLES: ClassVar[dict[str, list[str]]] = {
        "alice": ["author", "reviewer"],  # the admin (first user) and author; also a reviewer
        "bob": ["reviewer"],
        "carol": ["risk"],
        "dave": ["release-manager"],
        "erin": ["reviewer"],  # no key registered
    }

    def __init__(self, keys: Path) -> None:
        self.keys = keys
        self._registries: dict[str, object] = {}

    def __call__(self, user: str) -> object:
        from dataclasses import replace

        from registry import Registry, Settings

        if user not in self._registries:
            settings = Settings.from_env()
            key = self.keys / f"{user}.key" if user in self.SIGNERS else None
            self._registries[user] = Registry(settings=replace(settings, user=user, key=key))
        return self._registries[user]

    #: users whose key is registered (erin's is not: she cannot sign)
    SIGNERS: ClassVar[tuple[str, ...]] = ("alice", "bob", "carol", "dave")

    def key(self, user: str) -> Path:
        return self.keys / f"{user}.key"

    def close(self) -> None:
        for r in self._registries.values():
            r.close()  # type: ignore[attr-defined]


@pytest.fixture
def team(backend: Backend, tmp_path: Path) -> Iterator[Team]:
    from registry import Registry

    t = Team(tmp_path / "keys")
    for user in Team.ROLES:
        Registry.generate_key(t.keys, user)
    admin = t("alice")
    t.trust = admin.init(admin="alice", public_key=t.keys / "alice.pub")  # type: ignore[attr-defined]
    for user, roles in Team.ROLES.items():
        admin.add_user(user, roles=roles, public_key=None if user == "erin" else t.keys / f"{user}.pub")  # type: ignore[attr-defined]
    admin.set_policy(Path(__file__).resolve().parents[1] / "policies" / "regulated.yaml")  # type: ignore[attr-defined]
    yield t
    t.close()


# -- `adapters serve` as a real process, on each deployment -------------------------------------


@pytest.fixture(params=["sqlite-local", pytest.param("postgres-s3", marks=[pytest.mark.postgres, pytest.mark.s3])])
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's records and blobs: SQLite and a directory, or PostgreSQL and an S3 bucket."""
    if request.param == "postgres-s3":
        monkeypatch.setenv("ADAPTERS_DB", request.getfixturevalue("postgres_url"))
        monkeypatch.setenv("ADAPTERS_STORE", request.getfixturevalue("s3").url())
    return str(request.param)


@pytest.fixture
def admin_token(deployment: str) -> str:
    from registry import Registry

    with Registry(user="operator") as operator:
        return operator.create_token("alice", role="admin", label="first").secret


@pytest.fixture
def server(deployment: str, admin_token: str, tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "serve.log")
    try:
        yield s
    finally:
        s.stop()


# -- the CLI, embedded or through a real server ---------------------------------------------


class Cli:
    """``adapters`` in-process (click's runner), on the embedded registry or, ``remote``, through a real
    ``adapters serve`` over the same database and store, each user calling with a token of their own.

    Remotely the first caller (``tester``, the tests' default user) is the registry's admin, made so by
    the operator's bootstrap when the registry has no users yet; another user gets a token from that
    admin once they exist, and a user who does not exist calls with a token the server never issued."""

    def __init__(self, mode: str, log: Path) -> None:
        self.mode = mode
        self.remote = mode == "remote"
        self._log = log
        self._server: Any = None
        self._tokens: dict[str, str] = {}

    def __call__(self, *args: str, user: str | None = None, input: str | None = None) -> Any:
        from click.testing import CliRunner

        from cli.main import cli

        if not self.remote:
            env = {"ADAPTERS_USER": user} if user else None
            return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
        env_remote: dict[str, str | None] = {"ADAPTERS_TOKEN": self.token(user or "tester"), "ADAPTERS_USER": None}
        full = ["--registry", self.server.url, *args]
        return CliRunner().invoke(cli, full, env=env_remote, input=input, catch_exceptions=False)

    @property
    def server(self) -> Any:
        if self._server is None:
            from click.testing import CliRunner

            from cli.main import cli

            self._server = Server(self._log)
            # log in once, as a user does: it pins the registry key that `audit verify` checks against
            login = ["login", self._server.url, "--token-stdin"]
            done = CliRunner().invoke(cli, login, input=self.token("tester"), env={"ADAPTERS_USER": None})
            assert done.exit_code == 0, done.output
        return self._server

    def token(self, user: str) -> str:
        from registry import NotFound, PermissionDenied, Registry

        if user not in self._tokens:
            with Registry(user="operator") as operator:
                if not operator.users():
                    self._tokens[user] = operator.create_token(user, role="admin").secret
                    return self._tokens[user]
            admin = next(iter(self._tokens), "tester")
            try:
                with Registry(user=admin) as reg:
                    self._tokens[user] = reg.create_token(user).secret
            except (NotFound, PermissionDenied):
                return "adp_" + "0" * 43  # no such user here: a token nobody issued
        return self._tokens[user]

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()


@pytest.fixture(params=["embedded", "remote"])
def cli_run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """The CLI on the embedded registry, and through ``adapters serve`` (a subprocess) on the same one."""
    runner = Cli(str(request.param), tmp_path / "serve.log")
    try:
        yield runner
    finally:
        runner.close()
