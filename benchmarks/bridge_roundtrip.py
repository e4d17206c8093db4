"""Bridge speed over loopback UDP: a 32-bar clip uploaded → last result chunk received (engine
included, authored texture library), and 100 rapid edits in a row (only the latest job should
run; memory flat). Goal: ≤ 150 ms median round trip.

    python -m benchmarks.bridge_roundtrip [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import median_p95
from benchmarks.harmonize_speed import long_melody
from bridge.client import BridgeClient
from bridge.server import BridgeServer
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipNote, GenerateResult, JobContext
from ui.engine_link import generate

GOAL_MS = 150.0
OPTIONS = {"library": "default"}


def clip_of(bars: int, variant: int = 0) -> Clip:
    melody = long_melody(bars)
    tpb = melody.ticks_per_beat
    notes = tuple(
        ClipNote(n.pitch + (variant % 3), n.start_tick / tpb, n.duration_tick / tpb, 90, 1)
        for n in melody.notes
    )
    return Clip("bench", f"edit {variant}", bars * 4.0, 96.0, 4, 4, notes)


class CountingGenerate:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        self.calls += 1
        return generate(clip, options, ctx)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ACCOBRIDGE_DATA_DIR"] = tmp  # the authored library, a private store
        counting = CountingGenerate()
        session = Session(counting, ClipStore(Path(tmp) / "sessions"))
        with BridgeServer(session, "127.0.0.1", 0) as server, \
                BridgeClient("127.0.0.1", server.port) as client:
            clip = clip_of(32)
            client.run(clip, OPTIONS, 30.0)  # warm: library load, first analysis
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                client.run(clip, OPTIONS, 30.0)
                times.append((time.perf_counter() - start) * 1000)
            med, p95 = median_p95(times)
            print(f"round trip, 32-bar clip (upload → last result chunk): median {med:.1f} ms, "
                  f"p95 {p95:.1f} ms, goal {GOAL_MS:.0f} ms, ratio {med / GOAL_MS:.2f}")
            tracemalloc.start()
            for round_no in range(3):
                before = counting.calls
                deadline = time.monotonic() + 60
                client.hello(deadline)
                last = ""
                started = time.perf_counter()
                for edit in range(100):
                    last = uuid.uuid4().hex
                    client.upload(last, clip_of(32, edit), deadline)
                    client.request(last, OPTIONS)
                client.generate(last, "bench", OPTIONS, deadline)
                elapsed = time.perf_counter() - started
                current, peak = tracemalloc.get_traced_memory()
                print(f"100 rapid edits, round {round_no + 1}: {counting.calls - before} engine "
                      f"runs, latest result after {elapsed * 1000:.0f} ms, traced memory "
                      f"{current / 2**20:.1f} MB (peak {peak / 2**20:.1f} MB)")
            tracemalloc.stop()
        session.close(5.0)


if __name__ == "__main__":
    main()
