"""Push and pull of a ~1 GiB adapter file against `cp` of the same file, in one run.

    python benchmarks/push_pull.py [--size-mib 1024] [--repeat 3]

push  = Registry.push: copy into the blob store, hash what landed, fsync, rename, record the version
pull  = Registry.pull: copy out, re-hash every byte, fsync, rename the directory into place
cp    = `cp FILE DEST`            (page cache only: no durability)
cp+sync = `cp FILE DEST && sync DEST` (what push and pull guarantee)
sha256 = one sha256 pass over the file (OpenSSL via hashlib): the floor for anything that must hash

Every timed run starts from a warm page cache (the file was just written) and no dirty pages
(`sync` before it, untimed), so one run's writeback does not slow the next; medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from _common import median_of, report, sh

from registry import Registry
from registry._io import hash_file


def make_adapter(directory: Path, size_mib: int) -> Path:
    """A LoRA adapter directory whose safetensors file is about ``size_mib`` MiB (random data)."""
    import numpy as np
    from safetensors.numpy import save_file

    directory.mkdir(parents=True)
    hidden, r = 8192, 128
    per_module = 2 * hidden * r * 4  # A [r, h] + B [h, r] in float32
    modules = max(1, (size_mib << 20) // per_module)
    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(modules):
        prefix = f"base_model.model.model.layers.{i}.self_attn.q_proj"
        tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((r, hidden), dtype=np.float32)
        tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((hidden, r), dtype=np.float32)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    (directory / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": ["q_proj"]})
    )
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-push-pull-"))
    try:
        adapter = make_adapter(work / "adapter", args.size_mib)
        weights = adapter / "adapter_model.safetensors"
        size = weights.stat().st_size
        print(f"adapter file: {size / (1 << 30):.2f} GiB in {work}")
        dest = work / "cp-dest"
        homes = iter(range(10_000))
        state: dict[str, Registry] = {}

        def fresh_registry() -> None:  # every push stores new bytes: no deduplication helps it
            if "reg" in state:
                shutil.rmtree(state["reg"].settings.home, ignore_errors=True)
                state["reg"].close()
            state["reg"] = Registry(work / f"home-{next(homes)}")
            os.sync()

        def push() -> None:
            state["reg"].push(adapter, name="bench")

        def clear_dest() -> None:
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            os.sync()

        cp = median_of(lambda: sh("cp", str(weights), str(dest)), args.repeat, clear_dest)
        cp_sync = median_of(
            lambda: sh("sh", "-c", f"cp '{weights}' '{dest}' && sync '{dest}'"), args.repeat, clear_dest
        )
        sha = median_of(lambda: hash_file(weights), args.repeat, os.sync)
        push_t = median_of(push, args.repeat, fresh_registry)
        blob = state["reg"]._blobs.path(state["reg"].show("bench").manifest.files[1].sha256)
        cp_out = median_of(lambda: sh("cp", str(blob), str(dest)), args.repeat, clear_dest)
        pull_t = median_of(lambda: state["reg"].pull("bench", dest), args.repeat, clear_dest)
        state["reg"].close()

        report(
            f"push of a {size / (1 << 30):.2f} GiB adapter",
            [("cp", cp), ("cp+sync", cp_sync), ("sha256", sha), ("push", push_t)],
            "cp",
        )
        print(f"  push / cp+sync = {push_t / cp_sync:.2f}x   push / sha256 = {push_t / sha:.2f}x")
        report("pull (re-hashing every byte)", [("cp", cp_out), ("sha256", sha), ("pull", pull_t)], "cp")
        print(f"  pull / cp+sync = {pull_t / cp_sync:.2f}x   pull / sha256 = {pull_t / sha:.2f}x")
        print(
            f"\nthroughput: push {size / push_t / 1e9:.2f} GB/s, pull {size / pull_t / 1e9:.2f} GB/s, "
            f"sha256 {size / sha / 1e9:.2f} GB/s, cp {size / cp / 1e9:.2f} GB/s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("ADAPTERS_USER", "bench")
    main()
