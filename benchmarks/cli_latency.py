"""Start-up and listing latency of the `adapters` command, in one run.

    python benchmarks/cli_latency.py [--adapters 1000] [--versions 10] [--repeat 5]

* `adapters ls --json` over a registry of ADAPTERS x VERSIONS versions (aim: < 0.5 s), as a fresh
  process each time (cold start included);
* `adapters --help` cold start (aim: < 0.4 s);
* `python -c pass` as the floor both stand on.

The registry is filled by pushing one real adapter, then recording the other versions with the
catalog's own insert (same manifests, other names and numbers), which is much faster than 10,000
pushes and gives `ls` exactly the rows it would have to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import median_of, report

from registry import Registry
from registry.domain.clock import now_iso

ROOT = Path(__file__).resolve().parent.parent


def build_registry(home: Path, adapters: int, versions: int) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    import tinymodels

    src = home.parent / "src"
    base = tinymodels.save_base("llama", src / "base")
    adapter = tinymodels.make_adapter("llama", base, src / "adapter")
    with Registry(home) as reg:
        reg.push(adapter, name="seed", base=str(base), evals={"accuracy": 0.9})
        template = reg.show("seed").manifest
        catalog = reg._catalog
        from registry.storage.tables import AdapterRow

        with reg._db.write() as session:
            for a in range(adapters):
                name = f"team-{a % 10}/adapter-{a:05d}"
                session.add(AdapterRow(name=name, created_at=now_iso(), created_by="bench"))
                session.flush()
                adapter_id = catalog.adapter_id(session, name)
                for v in range(1, versions + 1):
                    manifest = dataclasses.replace(template, name=name, version=v, created_at=now_iso())
                    catalog._insert_version(session, adapter_id, manifest)
        return len(reg.ls())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        home = work / "home"
        total = build_registry(home, args.adapters, args.versions)
        adapters_bin = shutil.which("adapters") or str(Path(sys.executable).parent / "adapters")
        env = {**os.environ, "ADAPTERS_HOME": str(home)}
        env.pop("ADAPTERS_DB", None)
        env.pop("ADAPTERS_STORE", None)

        def run(*cmd: str) -> str:
            return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout

        # warm the OS file cache and Python's bytecode cache, and check the output once (untimed)
        assert len(json.loads(run(adapters_bin, "ls", "--json"))) == total
        t_py = median_of(lambda: run(sys.executable, "-c", "pass"), args.repeat)
        t_help = median_of(lambda: run(adapters_bin, "--help"), args.repeat)
        t_ls = median_of(lambda: run(adapters_bin, "ls", "--json"), args.repeat)
        report(
            f"cold starts (registry of {total} versions)",
            [("python -c pass", t_py), ("adapters --help", t_help), ("adapters ls --json", t_ls)],
            "python -c pass",
        )
        print(
            f"  aims: --help < 0.4 s ({'met' if t_help < 0.4 else 'NOT met'}), "
            f"ls --json < 0.5 s ({'met' if t_ls < 0.5 else 'NOT met'})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
