"""Learned chord model speed on this machine's CPU, one torch thread: warm `slot_log_probs` on
32 and 128 bars of 4/4 (goal: ≤ 10 ms median per 32 bars), the one-off load time, the weight
size (goal ≤ 10 MB) and whether two calls agree bit for bit.

    python3 -m benchmarks.chord_model_speed [--runs 50] [--threads 1] [--weights PATH]

The melody is `benchmarks.harmonize_speed.long_melody` (the demo tune, transposed per repeat)
on the 16th grid from its first note, in 8-bar phrases, with its key given.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import warm_timings_ms
from benchmarks.harmonize_speed import long_melody
from engine.errors import LibraryError
from engine.grid import melody_grid
from engine.models.chord_model import WEIGHTS_PATH, read_model

GOAL_MS_PER_32_BARS = 10.0
GOAL_BYTES = 10 * 1024 * 1024
BAR_COUNTS = (32, 128)
PHRASE_BARS = 8


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.chord_model_speed")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        model = read_model(args.weights)
    except LibraryError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    load_ms = (time.perf_counter() - started) * 1000
    size = args.weights.stat().st_size
    print(f"chord model {args.weights.name}: {size / 1024:.0f} KiB "
          f"(goal ≤ {GOAL_BYTES / 1024 / 1024:.0f} MB), load {load_ms:.0f} ms, "
          f"{args.threads} torch thread(s)")
    for bars in BAR_COUNTS:
        melody = long_melody(bars)
        bar16 = melody.meter.sixteenths_per_bar
        pitch = melody_grid(melody, bars * bar16)[0]
        phrases = [(start, min(PHRASE_BARS, bars - start)) for start in range(0, bars, PHRASE_BARS)]
        call = (pitch, 5, "major", bar16, melody.meter.beat_16th, phrases)
        median, p95 = warm_timings_ms(lambda c=call: model.slot_log_probs(*c), args.runs)
        same = np.array_equal(model.slot_log_probs(*call), model.slot_log_probs(*call))
        per32 = median * 32 / bars
        print(f"{bars:4d} bars: median {median:.2f} ms, p95 {p95:.2f} ms -> {per32:.2f} ms per 32 "
              f"bars (goal ≤ {GOAL_MS_PER_32_BARS:.0f}: "
              f"{'met' if per32 <= GOAL_MS_PER_32_BARS else 'MISSED'}); "
              f"repeat call bit-identical: {same}")


if __name__ == "__main__":
    main()
