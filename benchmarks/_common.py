"""Shared helpers for the benchmarks: timing, medians, a results table with ratios."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        times.append(timed(fn))
    return statistics.median(times)


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def report(title: str, rows: Sequence[tuple[str, float]], baseline: str, unit: str = "s") -> None:
    """Print each row's time and its ratio to the baseline row."""
    base = dict(rows)[baseline]
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:8.3f} {unit}   {value / base:6.2f}x {baseline}")
