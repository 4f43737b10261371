"""Audit report rendering time for a registry of 200 adapters x 10 versions (aim: < 2 s), in one run.

    python benchmarks/report.py [--adapters 200] [--versions 10] [--repeat 3]

The registry is filled as in cli_latency.py (one real push, the other versions recorded with the
catalog's own insert), and every version also gets two evaluation results, a review and an
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
from sqlalchemy import select

from registry import Registry
from registry.domain.clock import now_iso
from registry.storage.tables import ChannelMoveRow, EvalRow, TransitionRow, VersionRow


def enrich(home: Path) -> None:
    with Registry(home) as reg, reg._db.write() as session:
        versions = session.execute(
            select(VersionRow.__table__.c.id, VersionRow.__table__.c.adapter_id, VersionRow.__table__.c.number)
        ).all()  # type: ignore[attr-defined]
        at = now_iso()
        evals, transitions, moves = [], [], []
        latest: dict[int, tuple[int, int]] = {}
        for vid, aid, number in versions:
            evals += [
                {
                    "version_id": vid,
                    "metric": "accuracy",
                    "value": 0.80 + number / 100,
                    "dataset": None,
                    "recorded_at": at,
                    "recorded_by": "bench",
                    "source": "push",
                },
                {
                    "version_id": vid,
                    "metric": "rougeL",
                    "value": 0.40 + number / 200,
                    "dataset": "holdout",
                    "recorded_at": at,
                    "recorded_by": "bench",
                    "source": "eval add",
                },
            ]
            transitions += [
                {
                    "version_id": vid,
                    "action": "review",
                    "from_state": "draft",
                    "to_state": "in_review",
                    "actor": "bench",
                    "at": at,
                    "reason": None,
                    "policy_digest": None,
                },
                {
                    "version_id": vid,
                    "action": "approve",
                    "from_state": "in_review",
                    "to_state": "approved",
                    "actor": "bench",
                    "at": at,
                    "reason": None,
                    "policy_digest": None,
                },
            ]
            if number > latest.get(aid, (0, 0))[0]:
                latest[aid] = (number, vid)
        for aid, (_, vid) in latest.items():
            moves.append(
                {
                    "adapter_id": aid,
                    "channel": "production",
                    "version_id": vid,
                    "previous_version_id": None,
                    "action": "release",
                    "actor": "bench",
                    "at": at,
                }
            )
        session.execute(EvalRow.__table__.insert(), evals)  # type: ignore[attr-defined]
        session.execute(TransitionRow.__table__.insert(), transitions)  # type: ignore[attr-defined]
        session.execute(ChannelMoveRow.__table__.insert(), moves)  # type: ignore[attr-defined]


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
