"""The blob store on S3 (moto's server on 127.0.0.1): the layout shared with a directory, multipart
uploads with a SHA-256 per part, interrupted uploads, parallel ranged pulls, and every failure
named with its way out. The catalog, governance, merge and report tests run on S3 too (the
``backend`` fixture); these are about what only an object store has."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import S3

from cli.main import cli
from registry import InvalidInput, Registry
from registry.storage.blobs import open_blob_store
from registry.storage.blobs import s3 as s3_module
from registry.storage.blobs.s3 import S3BlobStore, parse_s3_url

pytestmark = pytest.mark.s3

LARGE = "zz-large.dat"
MiB = 1 << 20


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart from 8 MiB, in 5 MiB parts (S3's smallest), so a 17 MiB file goes up in 4 parts."""
    monkeypatch.setattr(s3_module, "MULTIPART_THRESHOLD", 8 * MiB)
    monkeypatch.setattr(s3_module, "PART_SIZE", 5 * MiB)


@pytest.fixture
def bucket_store(s3: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    monkeypatch.setenv("ADAPTERS_STORE", s3.url())
    return s3


def _with_large_file(llama, tmp_path: Path, size: int = 17 * MiB) -> Path:
    d = llama.copy_adapter(tmp_path / "adapter")
    (d / LARGE).write_bytes(os.urandom(size))
    return d


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def _uploads(s3: S3) -> list[dict[str, object]]:
    return list(s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []))  # type: ignore[attr-defined]


def _keys(s3: S3) -> set[str]:
    return {o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])}  # type: ignore[attr-defined]


# -- URLs and layout ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://b1", "b1", ""), ("s3://b1/", "b1", ""), ("s3://b1/team/ml", "b1", "team/ml/"), ("s3://b1/t/", "b1", "t/")],
)
def test_s3_urls_name_a_bucket_and_a_prefix(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == (bucket, prefix)
    store = open_blob_store(url)
    assert isinstance(store, S3BlobStore)
    assert store.key("ab" + "0" * 62) == f"{prefix}sha256/ab/ab{'0' * 62}"


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://b1/a/../c", "s3://b1/a//b"])
def test_malformed_s3_urls_are_refused_with_an_example(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"s3://BUCKET/PREFIX.*ADAPTERS_STORE"):
        open_blob_store(url)


def test_a_local_store_copied_into_a_bucket_with_plain_tools_serves_pulls(
    s3: S3, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed = Registry().push(llama.adapter, name="a")  # into the default local store
    local = Path(os.environ["ADAPTERS_HOME"]) / "blobs"
    for f in (local / "sha256").rglob("*"):  # what `aws s3 sync blobs/ s3://bucket/team/` does
        if f.is_file():
            s3.client.upload_file(str(f), s3.bucket, f"team/{f.relative_to(local)}")  # type: ignore[attr-defined]
    monkeypatch.setenv("ADAPTERS_STORE", s3.url("team"))
    with Registry() as reg:
        assert isinstance(reg._blobs, S3BlobStore)
        pulled = reg.pull("a:1", tmp_path / "from-bucket")
    assert pulled.digest == pushed.digest
    for f in pulled.files:
        assert (tmp_path / "from-bucket" / f.path).read_bytes() == (llama.adapter / f.path).read_bytes()

    # and back: the bucket downloaded into a directory is a local store again
    back = tmp_path / "back"
    for key in _keys(s3):
        dest = back / key.removeprefix("team/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.client.download_file(s3.bucket, key, str(dest))  # type: ignore[attr-defined]
    monkeypatch.setenv("ADAPTERS_STORE", str(back))
    with Registry() as reg:
        assert reg.pull("a:1", tmp_path / "from-directory").digest == pushed.digest


# -- uploads --------------------------------------------------------------------------------


def test_a_large_file_goes_up_in_parts_each_carrying_its_sha256(
    bucket_store: S3, small_parts: None, llama, tmp_path: Path
) -> None:
    d = _with_large_file(llama, tmp_path)
    with Registry() as reg:
        pushed = reg.push(d, name="a")
        ops = dict(reg._blobs.stats.by_operation)  # type: ignore[attr-defined]
    assert ops.get("CreateMultipartUpload") == 1 and ops.get("UploadPart") == 4
    data = (d / LARGE).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    head = bucket_store.client.head_object(  # type: ignore[attr-defined]
        Bucket=bucket_store.bucket, Key=f"team/sha256/{sha[:2]}/{sha}", ChecksumMode="ENABLED"
    )
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    # the server combined the SHA-256 each part was sent with: every part carried the right one
    assert head["ChecksumSHA256"].split("-")[0] == base64.b64encode(composite).decode()
    assert head["ContentLength"] == len(data)
    assert _uploads(bucket_store) == []
    assert pushed.new_bytes == pushed.size

    # the same files again: nothing is uploaded, only asked about
    with Registry() as reg:
        again = reg.push(d, name="a")
        ops = dict(reg._blobs.stats.by_operation)  # type: ignore[attr-defined]
    assert again.new_bytes == 0 and again.version == 2
    assert not {"PutObject", "UploadPart", "CreateMultipartUpload"} & set(ops)


def test_ctrl_c_during_a_multipart_upload_aborts_it_and_records_nothing(
    bucket_store: S3, small_parts: None, llama, tmp_path: Path
) -> None:
    d = _with_large_file(llama, tmp_path)

    def interrupt(label: str, done: int, total: int) -> None:
        if label == LARGE and done >= 5 * MiB:
            raise KeyboardInterrupt

    with Registry() as reg, pytest.raises(KeyboardInterrupt):
        reg.push(d, name="a", progress=interrupt)
    assert _uploads(bucket_store) == []  # aborted, not left to gc
    large = hashlib.sha256((d / LARGE).read_bytes()).hexdigest()
    assert not any(k.endswith(large) for k in _keys(bucket_store))
    with Registry() as reg:
        assert reg.ls() == []


_KILL_DURING_UPLOAD = """
import os, signal, sys
from registry import Registry
from registry.storage.blobs import s3
s3.MULTIPART_THRESHOLD, s3.PART_SIZE = 8 << 20, 5 << 20
def kill(label, done, total):
    if label == "zz-large.dat" and done >= 5 << 20:
        os.kill(os.getpid(), signal.SIGKILL)
Registry().push(sys.argv[1], name="a", progress=kill)
"""


def test_a_killed_push_leaves_no_version_and_its_rerun_uploads_only_what_is_missing(
    bucket_store: S3, small_parts: None, llama, tmp_path: Path
) -> None:
    d = _with_large_file(llama, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILL_DURING_UPLOAD), str(d)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Registry() as reg:
        assert reg.ls() == []
        pending = list(reg._blobs.pending_uploads())
        assert len(pending) == 1 and pending[0].size >= 5 * MiB  # for `adapters gc` to remove
        result = reg.push(d, name="a")
        assert result.version == 1
        assert result.new_bytes == (d / LARGE).stat().st_size  # the small files were already there
        collected = reg.gc(grace="0s")  # the killed push's multipart upload (its parts are not an object)
        assert [u.id for u in collected.uploads] == [pending[0].id] and _uploads(bucket_store) == []
        assert reg.fsck().ok


def test_a_dropped_connection_fails_the_push_cleanly(
    bucket_store: S3, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts and hangs up: the push fails naming the endpoint, and records nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def hang_up() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(1024)
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    try:
        result = _run("push", str(llama.adapter), "--name", "a")
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert endpoint in result.stderr and "AWS_ENDPOINT_URL" in result.stderr  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", bucket_store.endpoint)
    assert json.loads(_run("ls", "--json").stdout) == []  # type: ignore[attr-defined]


# -- downloads ------------------------------------------------------------------------------


def test_a_large_object_is_pulled_in_parallel_ranges_and_rehashed(
    bucket_store: S3, small_parts: None, llama, tmp_path: Path
) -> None:
    d = _with_large_file(llama, tmp_path)
    with Registry() as reg:
        reg.push(d, name="a")
    with Registry() as reg:
        reg.pull("a:1", tmp_path / "out")
        gets = reg._blobs.stats.by_operation.get("GetObject", 0)  # type: ignore[attr-defined]
    assert (tmp_path / "out" / LARGE).read_bytes() == (d / LARGE).read_bytes()
    assert gets >= 4 + 1  # four 5 MiB ranges of the large file, one GET per small file

    # the same size, other bytes: the re-hash catches it, and nothing is written
    sha = hashlib.sha256((d / LARGE).read_bytes()).hexdigest()
    bucket_store.client.put_object(  # type: ignore[attr-defined]
        Bucket=bucket_store.bucket, Key=f"team/sha256/{sha[:2]}/{sha}", Body=os.urandom(17 * MiB)
    )
    result = _run("pull", "a:1", "-o", str(tmp_path / "again"))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "a:1" in result.stderr and LARGE in result.stderr and "corrupted" in result.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "again").exists()


# -- failures, each named with its way out ----------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_endpoint_is_named_with_the_variables_that_set_it(
    llama, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("ADAPTERS_STORE", "s3://nowhere-bucket/team")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = _run("push", str(llama.adapter), "--name", "a")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert f"cannot reach the S3 endpoint {endpoint}" in err
    assert "AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL" in err and "Traceback" not in err
    assert json.loads(_run("ls", "--json").stdout) == []  # type: ignore[attr-defined]


def test_a_missing_bucket_says_to_create_it(s3: S3, llama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTERS_STORE", "s3://no-such-bucket/team")
    result = _run("push", str(llama.adapter), "--name", "a")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "the bucket 'no-such-bucket' does not exist" in result.stderr  # type: ignore[attr-defined]
    assert "aws s3 mb s3://no-such-bucket" in result.stderr  # type: ignore[attr-defined]


def test_missing_credentials_are_named(s3: S3, llama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTERS_STORE", s3.url())
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = _run("push", str(llama.adapter), "--name", "a")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "no AWS credentials" in result.stderr and "AWS_PROFILE" in result.stderr  # type: ignore[attr-defined]


def _moto_auth(endpoint: str, after: str) -> None:
    """moto checks IAM permissions once ``after`` more requests have been made ("inf": never)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=after.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=30).close()


@pytest.fixture
def read_only_keys(s3: S3) -> Iterator[tuple[str, str]]:
    """An IAM user that may read and list the bucket and nothing else; moto enforces IAM meanwhile."""
    import boto3

    _moto_auth(s3.endpoint, "inf")
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="serving")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
    }
    arn = iam.create_policy(PolicyName="read-only", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="serving", PolicyArn=arn)
    key = iam.create_access_key(UserName="serving")["AccessKey"]
    _moto_auth(s3.endpoint, "0")
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        _moto_auth(s3.endpoint, "inf")


def test_a_read_only_store_refuses_push_and_still_serves_pulls(
    bucket_store: S3, read_only_keys: tuple[str, str], llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _moto_auth(bucket_store.endpoint, "inf")
    Registry().push(llama.adapter, name="a")  # by the training machine's full credentials
    _moto_auth(bucket_store.endpoint, "0")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", read_only_keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", read_only_keys[1])
    changed = llama.copy_adapter(tmp_path / "changed")
    (changed / "README.md").write_text("new bytes the store does not hold\n")
    result = _run("push", str(changed), "--name", "a")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "the blob store s3://adapters-test/team is read-only for these credentials" in err
    assert "the environment (AWS_ACCESS_KEY_ID" in err and "s3:PutObject" in err and "Nothing was stored" in err
    assert [v["version"] for v in json.loads(_run("ls", "--json").stdout)] == [1]  # type: ignore[attr-defined]
    pulled = _run("pull", "a:1", "-o", str(tmp_path / "out"))
    assert pulled.exit_code == 0, pulled.stderr  # type: ignore[attr-defined]


def test_access_denied_on_read_names_the_key_and_the_credentials(
    bucket_store: S3, llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Registry().push(llama.adapter, name="a")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    _moto_auth(bucket_store.endpoint, "0")
    try:
        result = _run("pull", "a:1", "-o", str(tmp_path / "out"))
    finally:
        _moto_auth(bucket_store.endpoint, "inf")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "s3://adapters-test/team/sha256/" in err and "the environment (AWS_ACCESS_KEY_ID" in err
    assert not (tmp_path / "out").exists()
