"""The load check on CUDA with a 7B-shaped base: NF4 load + adapter vs a plain bf16 load.

    python benchmarks/verify_gpu.py [--out DIR]

Builds a random Llama with the shapes of a 7B model (hidden 4096, 32 layers, intermediate
11008, vocab 32000) on the GPU, saves it as safetensors shards, makes an r=16 all-linear
LoRA, runs `Registry.verify(mode="load", device="cuda")` (NF4, double quant, bf16 compute)
and, in a separate process so that peak memory is its own, loads the same base in bf16.
Prints load seconds and peak GPU memory (torch.cuda.max_memory_allocated) for both.
Needs a CUDA GPU with ~16 GB free and ~30 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _models import LLAMA_7B, OUT, write_llama, write_lora

from registry import Registry

_BF16_LOAD = """
import json, sys, time, torch
from transformers import AutoModelForCausalLM
torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, device_map={"": "cuda"})
torch.cuda.synchronize()
seconds = time.perf_counter() - start
with torch.no_grad():
    model(input_ids=torch.arange(3, 19, device="cuda").unsqueeze(0))
print(json.dumps({"seconds": seconds, "peak": torch.cuda.max_memory_allocated()}))
"""


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("verify_gpu.py needs a CUDA GPU; run benchmarks/verify.py on the CPU")
    print("GPU:", torch.cuda.get_device_name(0))
    base = write_llama(args.out / "llama-7b-shapes-bf16", LLAMA_7B, shards=3, device="cuda")
    size = sum(p.stat().st_size for p in base.glob("*.safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        adapter = write_lora(Path(tmp) / "lora", LLAMA_7B, r=16)
        with Registry(Path(tmp) / "home") as reg:
            reg.push(adapter, name="seven-b", base=str(base))
            report = reg.verify("seven-b", str(base), mode="load", device="cuda")
    failures = [(c.name, c.message) for c in report.failures]
    bf16 = json.loads(
        subprocess.run([sys.executable, "-c", _BF16_LOAD, str(base)], capture_output=True, text=True, check=True).stdout
    )
    print(f"base: {size / 1e9:.1f} GB of bf16 safetensors in 3 shards")
    print(f"  NF4 load check (base + r=16 LoRA + probe): {'passed' if report.passed else 'FAILED ' + str(failures)}")
    print(f"  NF4  load {report.load_seconds:6.1f} s   peak GPU memory {report.peak_memory_bytes / 2**30:6.2f} GiB")
    print(f"  bf16 load {bf16['seconds']:6.1f} s   peak GPU memory {bf16['peak'] / 2**30:6.2f} GiB")
    print(f"  NF4 / bf16 memory: {report.peak_memory_bytes / bf16['peak']:.2f}x")


if __name__ == "__main__":
    main()
