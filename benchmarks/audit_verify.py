"""How long `adapters audit verify` takes on a registry of 10,000 events with their facts (aim: < 2 s).

    python benchmarks/audit_verify.py [--events 10000] [--repeat 3]

The registry is built through the library as a team would use it: initialised (`init`), under the
regulated policy (so every governing event is signed and its signature replayed), with users and
keys, a few versions pushed, reviewed, verified and approved, and then `eval add` (one signed event
and one fact row each) until the log holds EVENTS events. Times: the verification alone (in-process,
the database warm) and the whole command as a fresh process (`adapters audit verify --json`), against
recomputing the bare hash chain (what verification cost before facts and signatures were checked).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median_of, report

from registry import Registry
from registry.domain.audit import verify_chain

ROOT = Path(__file__).resolve().parent.parent


def build(home: Path, events: int) -> Registry:
    sys.path.insert(0, str(ROOT / "tests"))
    import tinymodels

    keys = home.parent / "keys"
    for user in ("alice", "bob", "carol"):
        Registry.generate_key(keys, user)
    base = tinymodels.save_base("llama", home.parent / "base")
    adapter = tinymodels.make_adapter("llama", base, home.parent / "adapter")
    alice = Registry(home, user="alice")
    alice.init(admin="alice", public_key=keys / "alice.pub")
    alice.add_user("alice", roles=["author", "reviewer"], key=keys / "alice.key")
    alice.add_user("bob", roles=["reviewer"], public_key=keys / "bob.pub", key=keys / "alice.key")
    alice.add_user("carol", roles=["risk"], public_key=keys / "carol.pub", key=keys / "alice.key")
    alice.set_policy(ROOT / "policies" / "regulated.yaml", key=keys / "alice.key")
    data = home.parent / "train.jsonl"
    data.write_text('{"q": 1}\n')
    refs = []
    for _ in range(5):
        ref = alice.push(adapter, name="bench", base=str(base), description="bench",
                         datasets=[f"name=d,license=mit,path={data}"], evals={"accuracy": 0.9}).ref  # fmt: skip
        alice.review(ref, key=keys / "alice.key")
        alice.verify(ref, mode="static", key=keys / "alice.key")
        refs.append(ref)
    while len(alice.audit_log()) < events:
        batch = min(500, events - len(alice.audit_log()))
        for i in range(batch):
            alice.add_evals(refs[i % len(refs)], {"accuracy": 0.9 + (i % 7) / 100}, key=keys / "alice.key")
    return alice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    os.environ["ADAPTERS_STATE_DIR"] = str(work / "state")
    os.environ["ADAPTERS_CONFIG_DIR"] = str(work / "config")
    try:
        started = time.perf_counter()
        reg = build(work / "home", args.events)
        result = reg.audit_verify()
        assert result.ok, result.findings[:3]
        print(f"built a registry of {result.events} events, {result.facts} facts, {result.signatures} signatures "
              f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
        events = reg.audit_log()
        t_chain = median_of(lambda: verify_chain(events), args.repeat)
        t_verify = median_of(reg.audit_verify, args.repeat)
        env = {**os.environ, "ADAPTERS_HOME": str(work / "home")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cmd = [shutil.which("adapters") or str(Path(sys.executable).parent / "adapters"), "audit", "verify", "--json"]
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # warm caches
        t_cli = median_of(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True), args.repeat)
        report(
            f"audit verify of {result.events} events ({result.facts} facts, {result.signatures} signatures)",
            [
                ("hash chain only", t_chain),
                ("audit verify (library)", t_verify),
                ("adapters audit verify --json", t_cli),
            ],
            "hash chain only",
        )
        print(f"  aim: < 2 s for the command ({'met' if t_cli < 2 else 'NOT met'})")
        reg.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
