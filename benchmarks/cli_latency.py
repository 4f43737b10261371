"""Start-up and query latency of the `adapters` command, in one run.

    python benchmarks/cli_latency.py [--adapters 1000] [--versions 10] [--large 100000] [--repeat 5]

* `adapters ls --json` over a registry of ADAPTERS x VERSIONS versions (aim: < 0.5 s), as a fresh
  process each time (cold start included);
* `adapters show NAME:N --json` on a registry of LARGE versions against the same command on a
  registry of 10 versions (aim: within 1.2x: a version's records are found by index, whatever
  the registry's size);
* `adapters --help` cold start (aim: < 0.4 s);
* `python -c pass`, and importing SQLAlchemy and SQLModel alone, as the floors they stand on (every
  command that reads the database imports both).

The registries are filled by pushing one real adapter, then recording the other versions through
the record store (same manifests, other names and numbers, each with a review transition and an
eval), which is much faster than pushing each and gives `ls` and `show` exactly the rows they read.
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
from registry.domain.actor import Actor
from registry.domain.clock import now_iso
from registry.domain.records import TransitionRecord
from registry.domain.versions import EvalRecord

ROOT = Path(__file__).resolve().parent.parent


def build_registry(home: Path, adapters: int, versions: int) -> int:
    """A registry of ``adapters`` x ``versions`` versions (plus the seed), each reviewed and evaluated."""
    sys.path.insert(0, str(ROOT / "tests"))
    import tinymodels

    src = home.parent / f"src-{home.name}"
    base = tinymodels.save_base("llama", src / "base")
    adapter = tinymodels.make_adapter("llama", base, src / "adapter")
    with Registry(home) as reg:
        reg.push(adapter, name="seed", base=str(base), evals={"accuracy": 0.9})
        template = reg.show("seed").manifest
        with reg._records.write() as records:
            for a in range(adapters):
                name = f"team-{a % 10}/adapter-{a:05d}"
                at = now_iso()
                adapter_id = records.create_adapter(name, at, "bench")
                for v in range(1, versions + 1):
                    manifest = dataclasses.replace(template, name=name, version=v, created_at=at)
                    version_id = records.insert_version(adapter_id, manifest)
                    records.insert_transition(version_id, TransitionRecord("review", "draft", "in_review", "bench", at))
                    records.insert_evals(version_id, [EvalRecord("accuracy", 0.9, None, at, "bench", "push")])
                # every fact is bound to an event (the record store refuses a transaction with unbound facts)
                reg._audit.append(records, Actor("bench"), "bench load", name, {"versions": versions})
    return adapters * versions + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--large", type=int, default=100_000, help="versions in the large registry for `show`")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        listing, small, large = work / "listing", work / "small", work / "large"
        total = build_registry(listing, args.adapters, args.versions)
        build_registry(small, 1, 9)
        build_registry(large, args.large // 10, 10)
        adapters_bin = shutil.which("adapters") or str(Path(sys.executable).parent / "adapters")

        def run(home: Path, *cmd: str) -> str:
            env = {**os.environ, "ADAPTERS_HOME": str(home)}
            for var in ("ADAPTERS_DB", "ADAPTERS_STORE", "PYTHONDONTWRITEBYTECODE"):  # a user's machine caches bytecode
                env.pop(var, None)
            return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout

        # warm the OS file cache and Python's bytecode cache, and check the outputs once (untimed)
        assert len(json.loads(run(listing, adapters_bin, "ls", "--json"))) == total
        probe = "team-0/adapter-00000:5"
        assert json.loads(run(small, adapters_bin, "show", probe, "--json"))["state"] == "in_review"
        assert json.loads(run(large, adapters_bin, "show", probe, "--json"))["state"] == "in_review"
        t_py = median_of(lambda: run(listing, sys.executable, "-c", "pass"), args.repeat)
        t_sqla = median_of(lambda: run(listing, sys.executable, "-c", "import sqlalchemy"), args.repeat)
        t_sqlmodel = median_of(lambda: run(listing, sys.executable, "-c", "import sqlmodel"), args.repeat)
        t_help = median_of(lambda: run(listing, adapters_bin, "--help"), args.repeat)
        t_ls = median_of(lambda: run(listing, adapters_bin, "ls", "--json"), args.repeat)
        t_show_small = median_of(lambda: run(small, adapters_bin, "show", probe, "--json"), args.repeat)
        t_show_large = median_of(lambda: run(large, adapters_bin, "show", probe, "--json"), args.repeat)
        report(
            f"cold starts (ls over {total} versions)",
            [
                ("python -c pass", t_py),
                ("python -c 'import sqlalchemy'", t_sqla),
                ("python -c 'import sqlmodel'", t_sqlmodel),
                ("adapters --help", t_help),
                ("adapters ls --json", t_ls),
            ],
            "python -c pass",
        )
        report(
            "show NAME:N --json, registry of 10 versions against one of " + f"{args.large + 1:,}",
            [("show (10 versions)", t_show_small), (f"show ({args.large + 1:,} versions)", t_show_large)],
            "show (10 versions)",
        )
        ratio = t_show_large / t_show_small
        print(
            f"  aims: --help < 0.4 s ({'met' if t_help < 0.4 else 'NOT met'}), "
            f"ls --json < 0.5 s ({'met' if t_ls < 0.5 else 'NOT met'}), "
            f"show large/small <= 1.2x ({ratio:.2f}x: {'met' if ratio <= 1.2 else 'NOT met'})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
