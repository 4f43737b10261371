"""The blob store on S3 (issue 12), against boto3 and the local store, in one run on moto's S3 server.

    python benchmarks/object_store.py [--size-mib 1024] [--repeat 3] [--blobs 10000] [--versions 500]
                                      [--parts transfer,verify,maintenance]

moto's S3 server runs as a subprocess on 127.0.0.1 (every byte crosses a real HTTP socket, and the
server's own cost, on the same cores, is paid by both sides of every comparison).

1. transfer: push and pull of an adapter whose safetensors file is SIZE MiB (random float32; a real
   adapter_config.json beside it) through the registry (ADAPTERS_STORE=s3://..., SQLite in a temporary
   home), against boto3's own transfer manager on the same file, server and bucket (another key). Each
   push stores new bytes: the object is deleted before every run, so no deduplication skips it.
     push    = Registry.push: hashes the file once locally (the sha256 names the blob), HEADs the key,
               uploads 16 MiB parts on 8 threads, each part's SHA-256 computed and sent (the server checks
               it), completes, HEADs again; then records the version (SQLite, fsync).
     pull    = Registry.pull: HEAD, 16 MiB ranged GETs on 8 threads, every byte re-hashed in order and
               written, fsync of each file and directory, the directory renamed into place.
     upload_file      = boto3 defaults: 8 MiB parts on 10 threads, each part's CRC32 computed and sent
                        (botocore's request_checksum_calculation="when_supported" adds ChecksumAlgorithm=CRC32).
     upload_file+sha  = the same with ExtraArgs={"ChecksumAlgorithm": "SHA256"}: each part's SHA-256.
     download_file    = boto3 defaults: 8 MiB ranged GETs on 10 threads, no hash of the whole, no fsync.
     download_file+fsync = the same, then fsync of the file: the durability pull gives.
   Over plain HTTP (moto), botocore also SHA-256s every request body for its SigV4 signature, on both
   sides: that is one more SHA-256 pass for each upload, ours and boto3's.
2. verify: static verification (safetensors headers only) of an r=16 all-linear LoRA against a random
   1.1B-parameter Llama (benchmarks/_models.py, cached in benchmarks/out), with the adapter in S3 and
   in a local store: seconds, requests and bytes read from the store, against the adapter's size (what
   the export that static verification did before would have read).
3. maintenance: `adapters fsck --quick`, `adapters fsck`, `adapters gc --dry-run` and `adapters gc`
   (grace 0s) as commands, on a store of BLOBS blobs: VERSIONS versions pushed through the library, 10
   small files each, and the rest orphans put straight into the store (the blobs a crashed push leaves),
   which gc removes. Seconds (a fresh process each, so including its start) and the requests each
   command reports in its --json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from _common import median_of, timed
from _models import LLAMA_1B, OUT, write_llama, write_lora
from push_pull import make_adapter

from registry import Registry
from registry._io import hash_file

BUCKET = "adapters-bench"
PARTS = ("transfer", "verify", "maintenance")


# -- the server ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server(work: Path) -> Iterator[str]:
    """moto's S3 server as a subprocess on 127.0.0.1 and a free port; the AWS variables point at it."""
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    log = open(work / "moto.log", "wb")  # noqa: SIM115 (closed below, after the server)
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start; see {work / 'moto.log'}") from None
                time.sleep(0.2)
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
        )
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
        log.close()


def _rows(title: str, rows: list[tuple[str, float]], size: int) -> None:
    print(f"\n{title}")
    width = max(len(n) for n, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:8.3f} s   {size / seconds / 1e6:8.1f} MB/s")


# -- 1. push and pull against boto3's transfer manager ---------------------------------------------


def bench_transfer(work: Path, size_mib: int, repeat: int) -> dict[str, float]:
    adapter = make_adapter(work / "adapter", size_mib)
    weights = adapter / "adapter_model.safetensors"
    size = weights.stat().st_size
    sha, _ = hash_file(weights)
    print(f"\n[transfer] adapter file: {size / (1 << 30):.2f} GiB, {repeat} runs each, medians")
    dest = work / "dest"

    def clear() -> None:
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        os.sync()

    with Registry(work / "home-transfer", store=f"s3://{BUCKET}/registry") as reg:
        store: Any = reg._blobs
        requests: dict[str, int] = {}

        def push() -> None:
            before = dict(store.stats.by_operation)
            reg.push(adapter, name="bench")
            requests.clear()
            requests.update({op: n - before.get(op, 0) for op, n in store.stats.by_operation.items()})

        def fresh_object() -> None:  # every push uploads: the blob is not there yet
            store.client.delete_object(Bucket=BUCKET, Key=store.key(sha))
            os.sync()

        pushed = median_of(push, repeat, fresh_object)
        pulled = median_of(lambda: reg.pull("bench", dest), repeat, clear)
    uploads, downloads = _boto3_peers(weights, dest, repeat, clear)
    _rows("upload", [("push (registry)", pushed), *uploads.items()], size)
    print(f"  requests of one push: {dict((k, v) for k, v in requests.items() if v)}")
    _rows("download", [("pull (registry)", pulled), *downloads.items()], size)
    return {
        **{f"push / {name}": pushed / seconds for name, seconds in uploads.items()},
        **{f"pull / {name}": pulled / seconds for name, seconds in downloads.items()},
    }


def _boto3_peers(
    weights: Path, dest: Path, repeat: int, clear: Callable[[], None]
) -> tuple[dict[str, float], dict[str, float]]:
    """boto3's upload_file and download_file: with its defaults, and with the registry's part size and
    threads (16 MiB, 8), which is the like-for-like peer: moto's cost per request is then the same."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    from registry.storage.blobs.s3 import MULTIPART_THRESHOLD, PART_SIZE
    from registry.storage.blobs.s3client import WORKERS

    client = boto3.client("s3")  # boto3's defaults, as a user's script would have them
    like_ours = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE, max_concurrency=WORKERS
    )
    key = "peer/upload"

    def no_object() -> None:
        client.delete_object(Bucket=BUCKET, Key=key)
        os.sync()

    def upload(**kwargs: Any) -> Callable[[], None]:
        return lambda: client.upload_file(str(weights), BUCKET, key, **kwargs)

    def download(fsync: bool, **kwargs: Any) -> Callable[[], None]:
        def run() -> None:
            client.download_file(BUCKET, key, str(dest), **kwargs)
            if fsync:
                fd = os.open(dest, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

        return run

    sha256 = {"ChecksumAlgorithm": "SHA256"}
    uploads = {
        "upload_file (defaults: CRC32)": median_of(upload(), repeat, no_object),
        "upload_file (defaults, SHA256)": median_of(upload(ExtraArgs=sha256), repeat, no_object),
        "upload_file (16 MiB x 8, SHA256)": median_of(upload(ExtraArgs=sha256, Config=like_ours), repeat, no_object),
    }
    downloads = {
        "download_file (defaults)": median_of(download(False), repeat, clear),
        "download_file (defaults)+fsync": median_of(download(True), repeat, clear),
        "download_file (16 MiB x 8)+fsync": median_of(download(True, Config=like_ours), repeat, clear),
    }
    client.delete_object(Bucket=BUCKET, Key=key)
    return uploads, downloads


# -- 2. static verification from S3 and from a local store ------------------------------------------


def bench_verify(work: Path, repeat: int) -> dict[str, float]:
    print("\n[verify] building (or reusing) the 1.1B base in", OUT)
    base = write_llama(OUT / "llama-1.1b-bf16", LLAMA_1B)
    adapter = write_lora(work / "lora-r16", LLAMA_1B, r=16)
    adapter_size = sum(p.stat().st_size for p in adapter.iterdir())
    rows: list[tuple[str, float, tuple[int, int] | None]] = []
    for where, store in (("local", None), ("s3", f"s3://{BUCKET}/verify")):
        with Registry(work / f"home-verify-{where}", store=store) as reg:
            reg.push(adapter, name="big", base=str(base))  # fingerprints the base: its hashes are cached
            report = reg.verify("big", str(base), mode="static")
            assert report.passed, [(c.name, c.message) for c in report.failures]
            manifest = reg.show("big").manifest
            rows.append(_measured(f"{where}: verify --mode static", reg, repeat, partial(_static, reg, base)))
            rows.append(_measured(f"{where}: export, then headers", reg, repeat, partial(_export, reg, manifest)))
    print(f"\nstatic verify of an r=16 all-linear LoRA ({adapter_size / 1e6:.1f} MB) against a 1.1B Llama")
    print("  (export, then headers: what static verification did before it read by ranges)")
    for name, seconds, used in rows:
        what = f"{used[0]:>3} requests  {used[1]:>12,} bytes read" if used else "(a local directory: no requests)"
        print(f"  {name:<30} {seconds:7.3f} s   {what}")
    t = {name: seconds for name, seconds, _ in rows}
    return {
        "verify static: s3 / local": t["s3: verify --mode static"] / t["local: verify --mode static"],
        "verify static s3: ranges / export": t["s3: verify --mode static"] / t["s3: export, then headers"],
    }


def _static(reg: Registry, base: Path) -> None:
    reg.verify("big", str(base), mode="static")


def _export(reg: Registry, manifest: Any) -> None:
    """What ``verify --mode static`` did before: every file exported (re-hashed), then its headers read."""
    from registry._io import scratch_dir
    from registry.domain.adapterdir import read_adapter_dir

    with scratch_dir("bench-export-") as tmp:
        reg._catalog.export_files(manifest, tmp)
        read_adapter_dir(tmp)


def _measured(
    name: str, reg: Registry, repeat: int, fn: Callable[[], None]
) -> tuple[str, float, tuple[int, int] | None]:
    """The median seconds of ``fn``, and the requests and bytes one run asks of an S3 store (None: local)."""
    stats = getattr(reg._blobs, "stats", None)
    start = (stats.requests, stats.bytes_read) if stats else (0, 0)
    seconds = statistics.median(timed(fn) for _ in range(repeat))
    used = ((stats.requests - start[0]) // repeat, (stats.bytes_read - start[1]) // repeat) if stats else None
    return name, seconds, used


# -- 3. fsck and gc over a store of many blobs ------------------------------------------------------


def _seed(work: Path, home: Path, store: str, blobs: int, versions: int, files: int) -> None:
    """``versions`` versions of ``files`` files each, pushed through the library, and the rest of
    ``blobs`` as orphans put straight into the store (what pushes that crashed leave behind)."""
    start = time.perf_counter()
    with Registry(home, store=store) as reg:
        for v in range(versions):
            directory = _small_adapter(work / "seed" / f"v{v}", v, files)
            reg.push(directory, name=f"seed-{v % 50}", base_name="bench/base")
            shutil.rmtree(directory)
        pushed = time.perf_counter() - start
        orphans = work / "seed" / "orphans"
        orphans.mkdir(parents=True, exist_ok=True)
        paths = [orphans / f"o{i}" for i in range(blobs - versions * files)]
        for path in paths:
            path.write_bytes(b"orphan " + os.urandom(1024))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(reg._blobs.put, paths))
        shutil.rmtree(orphans)
    print(
        f"  seeded {versions} versions x {files} files in {pushed:.1f} s and {len(paths)} orphan blobs in "
        f"{time.perf_counter() - start - pushed:.1f} s"
    )


def _small_adapter(directory: Path, seed: int, files: int) -> Path:
    """A tiny LoRA adapter whose every file (config, weights, ``files - 2`` extras) is unique to ``seed``."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    (directory / "extra").mkdir(parents=True)
    prefix = "base_model.model.layers.0.q_proj"
    tensors = {
        f"{prefix}.lora_A.weight": rng.standard_normal((4, 16), dtype=np.float32),
        f"{prefix}.lora_B.weight": rng.standard_normal((16, 4), dtype=np.float32),
    }
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "revision": str(seed)}
    (directory / "adapter_config.json").write_text(json.dumps(config))
    for j in range(files - 2):
        (directory / "extra" / f"file-{j}.txt").write_bytes(
            b"seed " + os.urandom(512)
        )  # a text prefix: random bytes can start like a pickle
    return directory


def _adapters(home: Path, store: str, *args: str) -> tuple[float, dict[str, Any] | None, str]:
    env = {**os.environ, "ADAPTERS_HOME": str(home), "ADAPTERS_STORE": store}
    code = "from cli.main import main; main()"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    try:
        return seconds, json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        return seconds, None, proc.stderr or proc.stdout


def bench_maintenance(work: Path, blobs: int, versions: int) -> dict[str, float]:
    from cli.main import cli

    missing = [c for c in ("fsck", "gc") if c not in getattr(cli, "commands", {})]
    if missing:
        print(
            f"\n[maintenance] skipped: this checkout has no `adapters {' / '.join(missing)}` yet (they come with "
            "the gc branch); run this benchmark again where they exist"
        )
        return {}
    files = 10
    if versions * files > blobs:
        raise SystemExit(f"--versions {versions} x {files} files is more than --blobs {blobs}")
    home, store = work / "home-maintenance", f"s3://{BUCKET}/maintenance"
    print(f"\n[maintenance] a store of {blobs:,} blobs ({versions * files:,} referenced, the rest orphans)")
    _seed(work, home, store, blobs, versions, files)
    rows = []
    startup, _, _ = _adapters(home, store, "--help")
    for args in (
        ("fsck", "--quick", "--json"),
        ("fsck", "--json"),
        ("gc", "--dry-run", "--grace", "0s", "--json"),
        ("gc", "--grace", "0s", "--json"),
        ("fsck", "--quick", "--json"),
    ):
        seconds, out, err = _adapters(home, store, *args)
        if out is None:
            print(f"  adapters {' '.join(args)} failed: {err.strip()[:500]}")
            continue
        rows.append((" ".join(a for a in args if a != "--json"), seconds, out))
    print(f"\n  command{' ' * 27}seconds  requests  result   (`adapters --help` alone: {startup:.2f} s)")
    for name, seconds, out in rows:
        if "checked" in out:
            what = (
                f"{out['checked']['blobs']:,} referenced, {out['unreferenced']['blobs']:,} unreferenced, ok={out['ok']}"
            )
        else:
            what = f"listed {out['listed']:,}, {'would remove' if out['dry_run'] else 'removed'} {len(out['blobs']):,}"
        print(f"  adapters {name:<27} {seconds:7.2f}  {out.get('requests')!s:>8}  {what}")
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", "--size", type=int, default=1024, help="the adapter file's size for push/pull")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blobs", type=int, default=10_000, help="blobs in the store fsck and gc run over")
    parser.add_argument("--versions", type=int, default=500, help="versions (10 files each) among those blobs")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which parts to run, of {','.join(PARTS)}")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")

    work = Path(tempfile.mkdtemp(prefix="bench-object-store-"))
    os.environ.update(ADAPTERS_STATE_DIR=str(work / "state"), ADAPTERS_CONFIG_DIR=str(work / "config"))
    os.environ.setdefault("ADAPTERS_USER", "bench")
    ratios: dict[str, float] = {}
    try:
        with moto_server(work) as endpoint:
            print(f"moto S3 server at {endpoint}, work directory {work}")
            if "transfer" in parts:
                ratios |= bench_transfer(work, args.size_mib, args.repeat)
            if "verify" in parts:
                ratios |= bench_verify(work, args.repeat)
            if "maintenance" in parts:
                ratios |= bench_maintenance(work, args.blobs, args.versions)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if ratios:
        print("\nratios (aim: push and pull within 1.3x of boto3's own transfers)")
        width = max(len(name) for name in ratios)
        for name, value in ratios.items():
            print(f"  {name:<{width}}  {value:6.2f}x")


if __name__ == "__main__":
    main()
