"""The streaming merge against peft's load + merge_and_unload + save_pretrained and `cp -r`, in one run.

    python benchmarks/merge.py [--repeat 3] [--size 1.1b|small] [--method lora|loha]

Base: a random bf16 Llama with ~1.1B parameters (hidden 2048, intermediate 5632, 22 layers,
32 heads, 4 KV heads, vocab 32000) in 3 safetensors shards (``--size small``: ~45M parameters,
hidden 512, 4 layers, for a quick run); adapter: an r=16 LoRA on every
linear layer (``--method loha``: an r=16 LoHa, which the merge folds in through peft's own layer,
module by module, rather than its LoRA kernels). Each contender runs in its own process, started by a small launcher
(``/usr/bin/time -v``, else a bare ``python -S`` that forks and execs it), whose report of the
contender's ``ru_maxrss`` is its peak RSS: a process forked from this one would inherit this
process's RSS (it holds the model it just built), because Linux carries the peak RSS of the
address space a process had before ``exec`` into the ``ru_maxrss`` after it, and every
contender would show this process's size (1.04 GiB even for ``cp -r``). Wall times are the whole process and, for the Python paths, the
operation alone (without interpreter start-up and the imports of torch, transformers, peft). Every run starts with a warm
page cache and no dirty pages (`sync` before it, untimed), and one untimed round of all four
comes first: this VM pays a large one-time cost the first time it touches fresh memory (a
first `dd` of 2 GB took 3.9 s here, the next ones 0.4 s), which would otherwise land on
whichever contender runs first. The merge fsyncs its output
(it publishes atomically); `cp -r` and save_pretrained do not, so `cp -r + sync` is shown too.
Aims: merge <= 1.5x `cp -r`, >= 4x faster than the peft path, peak RSS <= 1.2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _models import LLAMA_1B, LLAMA_SMALL, OUT, write_llama, write_loha, write_lora

from registry import Registry

SIZES = {"1.1b": LLAMA_1B, "small": LLAMA_SMALL}

_OURS = """
import json, sys, time
import torch, safetensors.torch  # imported before the clock starts, as the peft script's imports are
if sys.argv[3:] == ["peft"]:
    import peft  # a non-LoRA merge runs peft's layers: its import is outside the clock too
from registry import Registry
start = time.perf_counter()
with Registry(sys.argv[1]) as reg:
    r = reg.merge("bench", out=sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start, "merged": r.merged_tensors, "copied": r.copied_tensors}))
"""

_PEFT = """
import json, sys, time, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
start = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16)
model = PeftModel.from_pretrained(model, sys.argv[2]).merge_and_unload()
model.save_pretrained(sys.argv[3], max_shard_size="1GB")
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


# Where /usr/bin/time is missing: a launcher of a few MB (no site, no imports beyond os and sys) that
# forks and execs the contender and reports its ru_maxrss in GNU time's words.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"Maximum resident set size (kbytes): {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""
_GNU_TIME = "/usr/bin/time"
_MAXRSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def launched(cmd: list[str], report: Path) -> list[str]:
    """``cmd`` started from a small launcher that writes the contender's own peak RSS to ``report``."""
    if os.access(_GNU_TIME, os.X_OK):
        return [_GNU_TIME, "-v", "-o", str(report), *cmd]
    return [sys.executable, "-S", "-c", _LAUNCHER, str(report), *cmd]


def run(cmd: list[str]) -> tuple[float, float, int, dict[str, float]]:
    """(process wall seconds, operation seconds or wall, peak RSS bytes, parsed JSON output)."""
    os.sync()
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        report = Path(tmp) / "rusage"
        start = time.perf_counter()
        proc = subprocess.run(launched(cmd, report), capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[:3]} failed:\n{proc.stderr[-3000:]}")
        found = _MAXRSS.search(report.read_text())
    if found is None:
        raise SystemExit(f"no peak RSS reported for {cmd[:3]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    return wall, float(data.get("seconds", wall)), int(found[1]) * 1024, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", choices=sorted(SIZES), default="1.1b", help="the base's size (default 1.1b)")
    parser.add_argument("--method", choices=("lora", "loha"), default="lora", help="the adapter's tuner")
    args = parser.parse_args()
    cfg = SIZES[args.size]
    base = write_llama(OUT / f"llama-{args.size}-bf16", cfg)
    work = Path(tempfile.mkdtemp(prefix="bench-merge-", dir=OUT))
    try:
        write = write_loha if args.method == "loha" else write_lora
        needs = ["peft"] if args.method == "loha" else []  # the LoRA merge never imports peft
        adapter = write(work / f"{args.method}-r16", cfg, r=16)
        home = work / "home"
        with Registry(home) as reg:
            reg.push(adapter, name="bench", base=str(base))
        size = sum(p.stat().st_size for p in base.iterdir() if p.is_file())
        subprocess.run(["cat", *map(str, base.glob("*.safetensors"))], stdout=subprocess.DEVNULL, check=True)
        results: dict[str, list[tuple[float, float, int]]] = {"cp -r": [], "cp -r + sync": [], "merge": [], "peft": []}
        for round_ in range(args.repeat + 1):  # round 0 warms up and is not counted
            for name, cmd, out in (
                ("cp -r", ["cp", "-r", str(base), str(work / "cp")], work / "cp"),
                ("cp -r + sync", ["sh", "-c", f"cp -r '{base}' '{work / 'cps'}' && sync"], work / "cps"),
                ("merge", [sys.executable, "-c", _OURS, str(home), str(work / "merged"), *needs], work / "merged"),
                ("peft", [sys.executable, "-c", _PEFT, str(base), str(adapter), str(work / "peft")], work / "peft"),
            ):
                shutil.rmtree(out, ignore_errors=True)
                wall, op, rss, _ = run(cmd)
                if round_:
                    results[name].append((wall, op, rss))
        med = {
            k: (statistics.median(w for w, _, _ in v), statistics.median(o for _, o, _ in v), max(r for _, _, r in v))
            for k, v in results.items()
        }
        print(
            f"\nmerge of an r=16 all-linear {'LoHa' if args.method == 'loha' else 'LoRA'} into a {size / 1e9:.2f} GB bf16 Llama (3 shards), median of {args.repeat}"
        )
        print(f"  {'':<14}{'process':>10}{'operation':>11}{'peak RSS':>12}")
        for name, (wall, op, rss) in med.items():
            print(f"  {name:<14}{wall:9.2f}s{op:10.2f}s{rss / 2**20:9.1f} MiB")
        cp, cp_sync = med["cp -r"][0], med["cp -r + sync"][0]
        merge_op, peft_op = med["merge"][1], med["peft"][1]
        print(f"\n  merge / cp -r          = {merge_op / cp:.2f}x   (aim <= 1.5x)")
        print(f"  merge / cp -r + sync   = {merge_op / cp_sync:.2f}x")
        print(f"  peft / merge           = {peft_op / merge_op:.2f}x faster (aim >= 4x)")
        print(
            f"  merge peak RSS         = {med['merge'][2] / 2**30:.2f} GiB (aim <= 1.2 GB); peft {med['peft'][2] / 2**30:.2f} GiB"
        )
        cp_rss = med["cp -r"][2]
        verdict = "its own" if cp_rss < 64 * 2**20 else "NOT its own: the launcher's RSS leaked into it"
        print(f"  cp -r peak RSS         = {cp_rss / 2**20:.1f} MiB (the size of cp, a few MB: {verdict})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
