"""Reading many corpus songs: in order, in two worker processes when there are enough of them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")
MAX_WORKERS = 2  # the target machine has two cores; MIDI parsing is the cost


def map_songs(func: Callable[[J], R], jobs: Sequence[J], parallel_from: int) -> Iterator[R]:
    """`func` over `jobs`, results in order as they come; fewer than `parallel_from` jobs (or a
    one-core machine) run in this process, where a pool would cost more than it saves."""
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    if len(jobs) < parallel_from or workers < 2:
        yield from map(func, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(func, jobs, chunksize=8)
