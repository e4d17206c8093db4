"""Arranger speed: warm-process latency of `engine.pipeline.arrange` for 32- and 128-bar melodies
with each texture library, the donor library's load time, whole-CLI wall time and peak memory.
Prints figures and the ratio to each goal (32 bars: ≤ 100 ms median warm with the default
library, ≤ 300 ms with the POP909 donor library).

    python -m benchmarks.arrange_speed [--runs 30]

Melodies are `benchmarks.harmonize_speed.long_melody` (the demo tune repeated), arranged from
scratch each time (key and phrases detected, chords searched, piano arranged), as the CLI does.
The POP909 rows run only when the donor library is imported.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.common import median_p95, warm_timings_ms
from benchmarks.harmonize_speed import long_melody
from engine.midi_io import write_song
from engine.pipeline import arrange
from engine.types import ArrangeOptions, TextureLibraryName

GOALS_MS: dict[tuple[TextureLibraryName, int], float] = {("default", 32): 100.0,
                                                         ("pop909", 32): 300.0}
BAR_COUNTS = (32, 128)
CLI_BARS = 32
# Runs in a fresh interpreter so that nothing is cached: import, then time the load alone.
_LOAD_DONORS = (
    "import time\n"
    "from engine.library.pop909_textures import load_donor_library\n"
    "t = time.perf_counter(); lib = load_donor_library(); t = time.perf_counter() - t\n"
    "print(t if lib is not None else -1.0)\n"
)


def donors_imported() -> bool:
    """Whether the POP909 donor library is there to arrange with."""
    try:
        from engine.library.pop909_textures import load_donor_library
    except ImportError:
        return False
    return load_donor_library() is not None


def warm_latency(bars: int, runs: int, library: TextureLibraryName) -> tuple[float, float]:
    """Median and p95 milliseconds of `arrange` after one warm-up call."""
    melody = long_melody(bars)
    options = ArrangeOptions(library=library)
    return warm_timings_ms(lambda: arrange(melody, options), runs)


def donor_load_seconds(runs: int) -> tuple[float, float] | None:
    """Median and max cold load time of the donor library (fresh process each); None if absent."""
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", _LOAD_DONORS], check=True,
                              capture_output=True, text=True)
        seconds = float(done.stdout.split()[-1])
        if seconds < 0:
            return None
        times.append(seconds)
    return statistics.median(times), max(times)


def cli_wall_time(runs: int) -> tuple[float, float] | str:
    """Median and p95 seconds of the whole `accobridge arrange` process on a 32-bar melody, or
    the last line of its error output when it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.mid"
        write_song(src, long_melody(CLI_BARS), [])
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = str(Path(tmp) / "o.mid")
            done = subprocess.run(
                [sys.executable, "-m", "ui.cli", "arrange", str(src), "-o", out],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
                return lines[-1]
            times.append(time.perf_counter() - start)
    return median_p95(times)


def peak_memory_mb(library: TextureLibraryName) -> float:
    """Peak traced Python allocation of one 128-bar arrange (tracing slows it: run apart)."""
    melody = long_melody(128)
    tracemalloc.start()
    try:
        arrange(melody, ArrangeOptions(library=library))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def _row(label: str, median: float, p95: float, goal: float | None) -> str:
    goal_cells = f"{goal:>9.0f}{median / goal:>7.2f}" if goal else f"{'—':>9}{'—':>7}"
    return f"{label:<40}{median:>10.1f}{p95:>10.1f}{goal_cells}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--load-runs", type=int, default=3)
    args = parser.parse_args(argv)
    libraries: list[TextureLibraryName] = ["default"]
    if donors_imported():
        libraries.append("pop909")
    print(f"{'case':<40}{'median ms':>10}{'p95 ms':>10}{'goal ms':>9}{'ratio':>7}")
    for library in libraries:
        for bars in BAR_COUNTS:
            med, p95 = warm_latency(bars, args.runs, library)
            label = f"arrange {bars} bars ({library} library)"
            print(_row(label, med, p95, GOALS_MS.get((library, bars))))
    if "pop909" in libraries:
        loaded = donor_load_seconds(args.load_runs)
        if loaded is not None:
            print(f"{'load POP909 donor library (cold process)':<40}{loaded[0] * 1000:>10.1f}"
                  f"{loaded[1] * 1000:>10.1f}  (max)")
    else:
        print("POP909 donor library not imported: pop909 rows skipped "
              "(import it with `accobridge library import-pop909 PATH`)")
    for library in libraries:
        print(f"peak traced memory of one 128-bar arrange ({library}): "
              f"{peak_memory_mb(library):.1f} MB")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"process peak RSS {rss_mb:.0f} MB")
    cli = cli_wall_time(args.cli_runs)
    label = f"accobridge arrange {CLI_BARS} bars ({libraries[-1]})"  # the CLI's own choice
    if isinstance(cli, str):
        print(f"{label}: failed: {cli}")
    else:
        print(f"{label:<40}{cli[0] * 1000:>10.0f}{cli[1] * 1000:>10.0f}{'—':>9}{'—':>7}")


if __name__ == "__main__":
    main()
