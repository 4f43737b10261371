"""Eight processes pushing to one name at the same moment get 1..8: no duplicate, no gap, no lost push."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from registry import Registry

_PUSHER = """
import json, os, sys, time
from pathlib import Path
from registry import Registry
adapter, sync, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
reg = Registry()
(sync / f"ready-{me}").touch()
while not (sync / "go").exists():
    time.sleep(0.001)
result = reg.push(adapter, name="team/shared", description=f"pushed by process {me}")
print(json.dumps({"version": result.version, "digest": result.digest, "me": me}))
"""


def test_eight_concurrent_pushes_get_one_to_eight(reg: Registry, llama, tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_PUSHER), str(llama.adapter), str(sync), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < 8:  # all eight started and opened the registry
        assert time.monotonic() < deadline, "pushers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    (sync / "go").touch()  # ... then push at the same moment
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))

    assert sorted(r["version"] for r in results) == list(range(1, 9))
    assert len({r["digest"] for r in results}) == 8
    listed = reg.ls(pattern="team/shared")
    assert [r.version for r in listed] == list(range(1, 9))
    by_version = {r["version"]: r for r in results}
    for summary in listed:  # every push is recorded as the process that made it saw it
        assert summary.digest == by_version[summary.version]["digest"]
        info = reg.show(summary.ref)
        assert info.manifest.description == f"pushed by process {by_version[summary.version]['me']}"


_APPROVER = """
import json, sys, time
from pathlib import Path
from registry import Registry
user, key, sync = sys.argv[1], sys.argv[2], Path(sys.argv[3])
reg = Registry(user=user)
(sync / f"ready-{user}").touch()
while not (sync / "go").exists():
    time.sleep(0.001)
result = reg.approve("support:1", key=key)
print(json.dumps(result.to_dict()))
"""


def test_two_approvals_at_the_same_moment_are_both_recorded(team, llama, tmp_path: Path) -> None:
    alice = team("alice")
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    ref = alice.push(
        llama.adapter,
        name="support",
        base=str(llama.base),
        quantization="nf4",
        datasets=[f"name=d,license=mit,path={data}"],
        evals={"accuracy": 0.9},
        description="x",
    ).ref
    alice.review(ref)
    alice.verify(ref, mode="load", device="cpu")
    before = len(alice.audit_log())
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_APPROVER), user, str(team.key(user)), str(sync)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user in ("bob", "carol")
    ]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < 2:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (sync / "go").touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(r["approvals"] for r in results) == [1, 2]  # serialised: one saw the other's approval
    assert alice.show(ref).state == "approved"
    assert sorted(a.actor for a in alice.show(ref).approvals) == ["bob", "carol"]
    events = alice.audit_log()
    assert [e.seq for e in events] == list(range(1, len(events) + 1)) and len(events) == before + 2
    assert alice.audit_verify().ok  # the chain stayed linear
