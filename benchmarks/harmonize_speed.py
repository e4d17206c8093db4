"""Harmonizer speed: warm-process latency for 32- and 128-bar melodies, whole-CLI wall time,
and peak memory, for the rules path and the learned scorer. Prints figures and the ratio to
each goal (≤ 20 ms / ≤ 80 ms median warm, ≤ 1.5 s for the whole `accobridge harmonize` process
on the rules path; the learned scorer is held to the same warm goals), plus the parts a cold
process pays once: loading the shipped template library (target 0.3 s) and melody analysis.

    python -m benchmarks.harmonize_speed [--runs 50]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.common import median_p95, warm_timings_ms
from engine.demo import DEMO_TUNE, melody_from_steps
from engine.library.chord_templates import DEFAULT_LIBRARY_PATH, load_library
from engine.midi_io import write_song
from engine.pipeline import analyze_melody, harmonize
from engine.types import HarmonizeOptions, Key, Melody, ModelChoice

GOALS_MS = {32: 20.0, 128: 80.0}
LIBRARY_LOAD_GOAL_S = 0.3
ANALYSIS_GOAL_MS = 5.0  # key, meter grid, pickup and phrases of 32 bars
CLI_GOAL_S = 1.5


def long_melody(bars: int) -> Melody:
    """The 16-bar demo tune, transposed per repeat so phrases differ, up to `bars` bars."""
    steps: list[tuple[int, int]] = []
    shift = (0, 2, -3, 5, 0, -1, 3, 0)
    for rep in range(bars // 16):
        steps.extend((p + shift[rep % len(shift)] if p else 0, d) for p, d in DEMO_TUNE)
    return melody_from_steps(steps, key=Key(5, "major"))


def warm_latency(bars: int, runs: int, given: bool, scorer: ModelChoice) -> tuple[float, float]:
    melody = long_melody(bars)
    options = HarmonizeOptions(scorer=scorer)
    if given:
        analysis = analyze_melody(melody)
        options = HarmonizeOptions(key=analysis.key, phrases=analysis.phrase_string, pickup_16th=0,
                                   scorer=scorer)
    return warm_timings_ms(lambda: harmonize(melody, options), runs)


def cli_wall_time(runs: int, scorer: ModelChoice) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.mid"
        melody = long_melody(32)
        write_song(src, melody, [])
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = str(Path(tmp) / "o.mid")
            subprocess.run([sys.executable, "-m", "ui.cli", "harmonize", str(src), "-o", out,
                            "--scorer", scorer], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return median_p95(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--cli-runs", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{'case':<34}{'median ms':>10}{'p95 ms':>10}{'goal ms':>9}{'ratio':>7}")
    loads = []
    for _ in range(5):
        load_library.cache_clear()
        start = time.perf_counter()
        load_library(DEFAULT_LIBRARY_PATH)
        loads.append((time.perf_counter() - start) * 1000)
    med, p95 = median_p95(loads)
    goal = LIBRARY_LOAD_GOAL_S * 1000
    print(f"{'load template library (cold)':<34}{med:>10.1f}{p95:>10.1f}{goal:>9.0f}"
          f"{med / goal:>7.2f}")
    melody32 = long_melody(32)
    med, p95 = warm_timings_ms(lambda: analyze_melody(melody32), args.runs)
    print(f"{'analyze 32 bars':<34}{med:>10.1f}{p95:>10.1f}{ANALYSIS_GOAL_MS:>9.0f}"
          f"{med / ANALYSIS_GOAL_MS:>7.2f}")
    scorers: tuple[ModelChoice, ...] = ("rules", "learned")
    for scorer in scorers:
        for bars in (32, 128):
            for given in (False, True):
                med, p95 = warm_latency(bars, args.runs, given, scorer)
                label = (f"{scorer}: {bars} bars, "
                         f"{'given key/phrases' if given else 'auto analysis'}")
                goal = GOALS_MS[bars]
                print(f"{label:<34}{med:>10.1f}{p95:>10.1f}{goal:>9.0f}{med / goal:>7.2f}")
    tracemalloc.start()  # separately: tracing slows the timed runs down
    harmonize(long_melody(128))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced memory of one 128-bar harmonize {peak / 2**20:.1f} MB; "
          f"process peak RSS {rss_mb:.0f} MB")
    for scorer in scorers:
        med, p95 = cli_wall_time(args.cli_runs, scorer)
        print(f"{'accobridge harmonize, ' + scorer:<34}{med * 1000:>10.0f}{p95 * 1000:>10.0f}"
              f"{CLI_GOAL_S * 1000:>9.0f}{med / CLI_GOAL_S:>7.2f}")


if __name__ == "__main__":
    main()
