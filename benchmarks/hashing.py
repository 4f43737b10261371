"""Hashing throughput of the registry against `sha256sum` on the same files, in one run.

    python benchmarks/hashing.py [--size-mib 1024] [--shards 3] [--repeat 3]

one file : registry._io.hash_file (hashlib/OpenSSL, 8 MiB reads) vs `sha256sum FILE`
shards   : fingerprint of a base directory of N shards (files hashed on parallel threads,
           as `adapters push --base DIR` does) vs `sha256sum SHARD...`
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from _common import median_of, report, sh

from registry._io import hash_file
from registry.basemodel import fingerprint_directory
from registry.filehashes import FileHashCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hash-"))
    try:
        one = work / "one.bin"
        with open(one, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        shards = work / "base"
        shards.mkdir()
        per = args.size_mib // args.shards
        for i in range(args.shards):
            with open(shards / f"model-{i + 1:05d}-of-{args.shards:05d}.safetensors", "wb") as f:
                for _ in range(per):
                    f.write(os.urandom(1 << 20))
        files = sorted(str(p) for p in shards.iterdir())
        size = one.stat().st_size
        no_cache = FileHashCache(None)  # measure hashing, not the cache

        t_sum = median_of(lambda: sh("sh", "-c", f"sha256sum '{one}' > /dev/null"), args.repeat)
        t_reg = median_of(lambda: hash_file(one), args.repeat)
        t_sum_n = median_of(
            lambda: sh("sh", "-c", "sha256sum " + " ".join(f"'{f}'" for f in files) + " > /dev/null"), args.repeat
        )
        t_reg_n = median_of(lambda: fingerprint_directory(shards, no_cache), args.repeat)

        report(f"one {size / (1 << 30):.2f} GiB file", [("sha256sum", t_sum), ("registry", t_reg)], "sha256sum")
        print(f"  registry {size / t_reg / 1e9:.2f} GB/s, sha256sum {size / t_sum / 1e9:.2f} GB/s")
        report(
            f"{args.shards} shards, {args.shards * per} MiB (threads: {min(4, os.cpu_count() or 1)})",
            [("sha256sum", t_sum_n), ("registry", t_reg_n)],
            "sha256sum",
        )
        total = args.shards * per << 20
        print(f"  registry {total / t_reg_n / 1e9:.2f} GB/s, sha256sum {total / t_sum_n / 1e9:.2f} GB/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
