"""Audit report rendering time for a registry of 200 adapters x 10 versions (aim: < 2 s), in one run.

    python benchmarks/report.py [--adapters 200] [--versions 10] [--repeat 3]

The registry is filled as in cli_latency.py (one real push, the other versions recorded through
the record store), and every version also gets two evaluation results, a review and an
approval (transitions), and the latest version of each adapter a release to production, so each
section of the report has content. Times cover building the report from the database and
rendering it (HTML, Markdown, JSON), audit-chain verification included.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import median_of
from cli_latency import build_registry

from registry import Registry
from registry.domain.clock import now_iso
from registry.domain.records import ChannelMove, TransitionRecord
from registry.domain.versions import EvalRecord
from registry.storage.records import StoredVersion


def enrich(home: Path) -> None:
    """Two evals, an approval and (for each adapter's latest version) a release to production per version.

    build_registry already gave every version a review and an accuracy eval."""
    with Registry(home) as reg, reg._records.write() as records:
        versions = records.versions_of(None)
        at = now_iso()
        latest: dict[int, StoredVersion] = {}
        for v in versions:
            records.insert_evals(
                v.id,
                [
                    EvalRecord("accuracy", 0.80 + v.number / 100, None, at, "bench", "push"),
                    EvalRecord("rougeL", 0.40 + v.number / 200, "holdout", at, "bench", "eval add"),
                ],
            )
            records.insert_transition(v.id, TransitionRecord("approve", "in_review", "approved", "bench", at))
            if v.number > getattr(latest.get(v.adapter_id), "number", 0):
                latest[v.adapter_id] = v
        for aid, v in latest.items():
            move = ChannelMove(0, v.name, "production", "release", v.number, None, "bench", at, v.digest)
            records.insert_move(aid, v.id, None, move)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=200)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        home = work / "home"
        total = build_registry(home, args.adapters, args.versions)
        enrich(home)
        with Registry(home) as reg:
            reg.audit_report(format="html")  # warm caches
            print(
                f"\naudit report of a registry with {total} versions ({args.adapters} adapters x {args.versions} + 1)"
            )
            for fmt in ("html", "md", "json"):
                report = reg.audit_report(format=fmt)
                seconds = median_of(lambda f=fmt: reg.audit_report(format=f), args.repeat)
                verdict = "met" if seconds < 2 else "NOT met"
                print(f"  {fmt:<5} {seconds:6.2f} s   {len(report.content) / 1e6:6.1f} MB   (aim < 2 s: {verdict})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
