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
