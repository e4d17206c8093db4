"""Small pieces every benchmark shares: percentiles and running pieces across processes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in 0..1."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def median_p95(values: Sequence[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 0.95)


def warm_timings_ms(run: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and p95 in ms of `runs` calls of `run`, after one untimed call that pays the
    once-per-process loads (libraries, indexes, models)."""
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return median_p95(times)


def map_pieces(func: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """`func` over `items` in order; `jobs` worker processes (1: in this process)."""
    if jobs <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(func, items, chunksize=1))
