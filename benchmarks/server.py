"""Push and pull of a large adapter through `adapters serve` against the same on an embedded registry
with the same store, on a local directory and on S3 (moto's server), with each side's peak memory.

    python benchmarks/server.py [--size 1024] [--stores local,s3] [--repeat 1] [--versions 10000] [--skip-bytes|--skip-reads]

--size is the adapter's size in MiB (5120 for 5 GiB). Every push sends new bytes (each run's adapter
differs in a few bytes, so nothing is deduplicated); every pull writes a new directory.

What each side pays:
  embedded push, local: copy into the store in the kernel, hash what landed, fsync, rename (one sha256 pass)
  remote push, local:   client: one sha256 pass (through its file-hash cache) + sending the bytes;
                        server: hashes the bytes as they arrive, writes them to tmp/, fsync, rename
  embedded push, S3:    one sha256 pass + a multipart upload (16 MiB parts, 8 at a time, each with its SHA-256)
  remote push, S3:      client: one sha256 pass + the same parts, to presigned URLs, each part hashed once more
                        for its signed checksum; server: re-hashes the object from the store (moto checks no
                        checksum, so the server does not rely on one)
  pull (all):           the bytes come down (streamed through the server for a local store; from presigned URLs
                        on S3), are re-hashed by the client, fsynced, and the directory renamed into place

Reads: a registry of --versions versions (SQLite, every version reviewed and evaluated) served by
`adapters serve --workers 2`: `show` answered over HTTP (GET /api/v1/versions/REF, token checked, the
version resolved and every fact read, JSON encoded) by 1 client in a loop and by 32 concurrent clients
(p50, p99, requests per second), and `adapters ls --json` of every version through the server against the
same command embedded (both: a fresh CLI process; remotely it also pays the HTTP round trip and JSON
decoding of the rows).

Peak RSS is each process's high-water mark (VmHWM): the client for its one command, the
server over the whole run on that store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ADAPTERS = str(Path(sys.executable).parent / "adapters")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def serving(work: Path, env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    log = open(work / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed below)
    cmd = [ADAPTERS, "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"adapters serve did not start; see {log.name}") from None
                time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
        log.close()


def variant(source: Path, dest: Path, n: int) -> Path:
    """A copy of the adapter whose weights differ in their last 8 bytes: new blobs, the same size and header."""
    shutil.copytree(source, dest)
    weights = dest / "adapter_model.safetensors"
    with open(weights, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(n.to_bytes(8, "little"))
    return dest


def client(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One push or pull in a fresh process: its time and peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--client", *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_client(argv: list[str]) -> None:
    """The child side of :func:`client`: ``push|pull embedded|URL DIR NAME|REF [TOKEN]``."""
    action, where, path, name = argv[:4]
    from registry import Registry, RemoteRegistry

    reg: Any = Registry(user="alice") if where == "embedded" else RemoteRegistry(where, os.environ["ADAPTERS_TOKEN"])
    started = time.perf_counter()
    with reg:
        if action == "push":
            reg.push(path, name=name)
        else:
            reg.pull(name, path)
    elapsed = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so it would report the parent's
    print(json.dumps({"seconds": elapsed, "rss_mib": _hwm_kib(os.getpid()) / 1024}))


def bench_store(work: Path, kind: str, adapter: Path, size: int, repeat: int) -> list[dict[str, Any]]:
    home = work / f"home-{kind}"
    env = {**os.environ, "ADAPTERS_HOME": str(home), "ADAPTERS_STATE_DIR": str(work / f"state-{kind}")}
    env.pop("ADAPTERS_DB", None)
    env.pop("ADAPTERS_REGISTRY", None)
    env["ADAPTERS_STORE"] = f"s3://{BUCKET}/bench" if kind == "s3" else str(home / "blobs")
    os.environ.update({k: env[k] for k in ("ADAPTERS_HOME", "ADAPTERS_STATE_DIR", "ADAPTERS_STORE")})
    from registry import Registry

    with Registry(user="operator") as operator:
        token = operator.create_token("alice", role="admin").secret
    rows: list[dict[str, Any]] = []
    with serving(work, env) as (url, proc):
        cenv = {**env, "ADAPTERS_TOKEN": token}
        for i in range(repeat):
            for side in ("embedded", "remote"):
                src = variant(adapter, work / f"{kind}-{side}-{i}", 2 * i + (side == "remote"))
                subprocess.run(["sync"], check=True)
                where = "embedded" if side == "embedded" else url
                name = f"bench-{side}"
                pushed = client(["push", where, str(src), name], cenv)
                out = work / f"{kind}-{side}-{i}-pulled"
                subprocess.run(["sync"], check=True)
                pulled = client(["pull", where, str(out), f"{name}:{i + 1}"], cenv)
                rows.append({"store": kind, "side": side, "push": pushed, "pull": pulled})
                shutil.rmtree(src)
                shutil.rmtree(out)
        server_rss = _hwm_kib(proc.pid) / 1024
    for r in rows:
        r["server_rss_mib"] = server_rss
    return rows


BUCKET = "adapters-bench"


def summarise(rows: list[dict[str, Any]], size: int) -> None:
    import statistics

    for kind in sorted({r["store"] for r in rows}):
        mine = [r for r in rows if r["store"] == kind]

        def med(side: str, op: str, key: str, mine: list[dict[str, Any]] = mine) -> float:
            return float(statistics.median(r[op][key] for r in mine if r["side"] == side))

        print(f"\n{kind} store, {size >> 20} MiB adapter (median of {len(mine) // 2})")
        for op in ("push", "pull"):
            e, r = med("embedded", op, "seconds"), med("remote", op, "seconds")
            print(
                f"  {op}: embedded {e:7.2f} s ({size / e / 1e6:6.0f} MB/s)   through the server {r:7.2f} s "
                f"({size / r / 1e6:6.0f} MB/s)   ratio {r / e:5.2f}x"
            )
            print(
                f"        peak RSS: embedded client {med('embedded', op, 'rss_mib'):6.0f} MiB, remote client "
                f"{med('remote', op, 'rss_mib'):6.0f} MiB"
            )
        print(f"  server peak RSS over the run: {mine[0]['server_rss_mib']:.0f} MiB")


def _timed_gets(url: str, token: str, paths: list[str], concurrency: int) -> dict[str, float]:
    """GET every path, ``concurrency`` at a time (asyncio + httpx): latency percentiles and throughput."""
    import asyncio

    import httpx

    latencies: list[float] = []

    async def worker(queue: asyncio.Queue[str], http: httpx.AsyncClient) -> None:
        while not queue.empty():
            path = queue.get_nowait()
            started = time.perf_counter()
            r = await http.get(path)
            latencies.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:200]}")

    async def run() -> float:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for p in paths:
            queue.put_nowait(p)
        limits = httpx.Limits(max_connections=concurrency)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
            await http.get(paths[0])  # connect once before timing
            started = time.perf_counter()
            await asyncio.gather(*(worker(queue, http) for _ in range(concurrency)))
            return time.perf_counter() - started

    wall = asyncio.run(run())
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "rps": len(latencies) / wall, "requests": len(latencies)}


def bench_reads(work: Path, versions: int) -> dict[str, Any]:
    from cli_latency import build_registry

    home = work / "home-reads"
    env = {**os.environ, "ADAPTERS_HOME": str(home), "ADAPTERS_STATE_DIR": str(work / "state-reads")}
    for k in ("ADAPTERS_DB", "ADAPTERS_REGISTRY", "ADAPTERS_STORE", "ADAPTERS_TOKEN"):
        env.pop(k, None)
    os.environ.update({k: env[k] for k in ("ADAPTERS_HOME", "ADAPTERS_STATE_DIR")})
    for k in ("ADAPTERS_DB", "ADAPTERS_STORE"):
        os.environ.pop(k, None)
    total = build_registry(home, max(1, versions // 10), 10)
    from registry import Registry

    with Registry(user="operator") as operator:
        admin = next(u.name for u in operator.users() if "admin" in u.roles)  # who pushed the seed
    with Registry(user=admin) as reg:
        token = reg.create_token(admin).secret  # the operator's first token for that admin
    refs = [f"team-{a % 10}/adapter-{a:05d}:{v}" for a in range(max(1, versions // 10)) for v in range(1, 11)]
    result: dict[str, Any] = {"versions": total}
    with Registry(user=admin) as embedded:
        started = time.perf_counter()
        for ref in refs[:200]:
            embedded.show(ref)
        result["embedded_show_ms"] = (time.perf_counter() - started) / 200 * 1000
    with serving(work, env, workers=2) as (url, _proc):
        paths = [f"/api/v1/versions/{r}" for r in refs]
        result["show_1"] = _timed_gets(url, token, paths[:300], 1)
        result["show_32"] = _timed_gets(url, token, paths[:2000], 32)

        def ls(remote: bool) -> float:
            args = [ADAPTERS, *(["--registry", url] if remote else []), "ls", "--json"]
            cenv = {**env, **({"ADAPTERS_TOKEN": token} if remote else {})}
            best = []
            for _ in range(3):
                started = time.perf_counter()
                out = subprocess.run(args, capture_output=True, env=cenv, check=True)
                best.append(time.perf_counter() - started)
                assert len(json.loads(out.stdout)) == total
            return sorted(best)[1]

        result["ls_embedded_s"], result["ls_remote_s"] = ls(False), ls(True)
    r = result
    print(f"\nreads over {r['versions']:,} versions (adapters serve --workers 2, SQLite):")
    print(f"  show, embedded in-process:   {r['embedded_show_ms']:.1f} ms each")
    for n in (1, 32):
        s = r[f"show_{n}"]
        print(f"  show over HTTP, {n:>2} client{'s' if n > 1 else ' '}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
              f"{s['rps']:.0f} requests/s ({s['requests']} requests)")  # fmt: skip
    print(f"  ls --json of every version: embedded {r['ls_embedded_s']:.2f} s, through the server "
          f"{r['ls_remote_s']:.2f} s: {r['ls_remote_s'] / r['ls_embedded_s']:.2f}x")  # fmt: skip
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        run_client(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="adapter size in MiB (default 1024)")
    parser.add_argument("--stores", default="local,s3", help="local, s3 or both (default local,s3)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--versions", type=int, default=10_000, help="versions in the read benchmark (default 10000)")
    parser.add_argument("--skip-bytes", action="store_true", help="only the read benchmark")
    parser.add_argument("--skip-reads", action="store_true", help="only push and pull")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from push_pull import make_adapter

    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    rows: list[dict[str, Any]] = []
    try:
        if not args.skip_reads:
            rows.append({"reads": bench_reads(work, args.versions)})
        adapter = make_adapter(work / "adapter", args.size)
        size = sum(p.stat().st_size for p in adapter.iterdir())
        for kind in [] if args.skip_bytes else args.stores.split(","):
            if kind == "s3":
                from object_store import moto_server

                with moto_server(work):
                    import boto3

                    with contextlib.suppress(Exception):
                        boto3.client("s3").create_bucket(Bucket=BUCKET)
                    rows += bench_store(work, kind, adapter, size, args.repeat)
            else:
                rows += bench_store(work, kind, adapter, size, args.repeat)
            summarise([r for r in rows if r.get("store") == kind], size)
        print("\n" + json.dumps(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
