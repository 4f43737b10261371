"""Verification timings on the CPU, in one run.

    python benchmarks/verify.py [--repeat 5]

1. Static check (safetensors headers only) of an r=16 all-linear LoRA against a random
   ~1.1B-parameter bf16 Llama in 3 shards (hidden 2048, intermediate 5632, 22 layers,
   32 heads, 4 KV heads, vocab 32000). Aim: < 0.1 s. Shown three ways: the whole
   `Registry.verify(mode="static")` call with the base's file hashes cached (as after the
   push that fingerprinted it), the same with a cold hash cache (the fingerprint then
   has to read the 2.2 GB once), and the header checks alone.
2. Load check (4-bit NF4 base on the CPU + peft + probe) on the tiny test models.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import median_of, timed
from _models import LLAMA_1B, OUT, write_llama, write_lora

from registry import Registry

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        print("building (or reusing) the 1.1B base in", OUT)
        base = write_llama(OUT / "llama-1.1b-bf16", LLAMA_1B)
        adapter = write_lora(work / "lora-r16", LLAMA_1B, r=16)
        size = sum(p.stat().st_size for p in base.glob("*.safetensors"))
        with Registry(work / "home") as reg:
            push_s = timed(lambda: reg.push(adapter, name="big", base=str(base)))
            warm = median_of(lambda: reg.verify("big", str(base), mode="static"), args.repeat)
            report = reg.verify("big", str(base), mode="static")
            assert report.passed, [(c.name, c.message) for c in report.failures]
        with Registry(work / "home-cold") as cold_reg:  # a new home: an empty file-hash cache
            cold_reg.push(adapter, name="big", base="unresolved/name-only")
            cold = timed(lambda: cold_reg.verify("big", str(base), mode="static", allow_base_mismatch=True))

        import json

        from registry.domain.adapterdir import read_adapter_dir, read_safetensors_header
        from registry.domain.compat import static_checks

        src = read_adapter_dir(adapter)
        base_config = json.loads((base / "config.json").read_text())

        def headers_and_checks() -> None:
            tensors = [t for shard in sorted(base.glob("*.safetensors")) for t in read_safetensors_header(shard)]
            static_checks(src.facts, src.config, src.tensors, tensors, base_config)

        core = median_of(headers_and_checks, args.repeat)
        print(
            f"\nstatic check, r=16 all-linear LoRA ({src.facts.tensors} tensors) vs 1.1B base ({size / 1e9:.2f} GB, 3 shards)"
        )
        print(f"  headers + shape checks alone         {core * 1000:8.1f} ms")
        print(
            f"  verify --mode static, hashes cached  {warm * 1000:8.1f} ms   (aim < 100 ms: {'met' if warm < 0.1 else 'NOT met'})"
        )
        print(
            f"  verify --mode static, cold cache     {cold * 1000:8.1f} ms   (fingerprint reads {size / 1e9:.2f} GB once)"
        )
        print(f"  push with --base (first fingerprint) {push_s * 1000:8.1f} ms")

        sys.path.insert(0, str(ROOT / "tests"))
        import tinymodels

        print("\nload check (4-bit NF4 on the CPU, peft, probe) on the tiny test models")
        with Registry(work / "home-tiny") as reg:
            for kind in tinymodels.KINDS:
                tiny_base = tinymodels.save_base(kind, work / f"{kind}-base")
                tiny_adapter = tinymodels.make_adapter(kind, tiny_base, work / f"{kind}-lora")
                reg.push(tiny_adapter, name=kind, base=str(tiny_base))
                reg.verify(kind, str(tiny_base), mode="load", device="cpu")  # first one records the reference
                seconds = median_of(
                    lambda k=kind, b=str(tiny_base): reg.verify(k, b, mode="load", device="cpu"),
                    args.repeat,  # type: ignore[misc]
                )
                r = reg.verify(kind, str(tiny_base), mode="load", device="cpu")
                assert r.passed, [(c.name, c.message) for c in r.failures]
                print(f"  {kind:<6} verify --mode load {seconds:6.2f} s  (base+adapter load {r.load_seconds:.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
