"""Learned re-harmonizer speed on this machine's CPU: all 16 two-bar segments of a 32-bar song
in one batched call (goal <= 50 ms median), the whole `engine.pipeline.arrange` with
ArrangeOptions(library="pop909", reharmonizer="learned") on a 32-bar melody (goal <= 150 ms
median, when the POP909 donor library is imported) next to the rule-based re-harmonizer, and
the process's peak RSS (goal <= 600 MB).

    python3 -m benchmarks.vae_speed [--runs 30] [--weights PATH]

The 32-bar song: four 8-bar phrases, each a donor of POP909 held-out segments when the segment
file (.train/pop909_segments.npz) is there, else a synthetic 8-bar texture; target chords change
every 2 beats.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import warm_timings_ms
from engine.arranger.plugins import DonorPhrase, reharmonize_all
from engine.errors import LibraryError
from engine.types import Chord, ChordEvent

GOAL_SONG_MS = 50.0
GOAL_ARRANGE_MS = 150.0
GOAL_RSS_MB = 600.0
SEGMENTS = Path(".train/pop909_segments.npz")
PHRASE_BARS = 8
SONG_BARS = 32


def song_phrases() -> tuple[list[DonorPhrase], str]:
    """Four 8-bar donor phrases laid end to end (32 bars) and where their notes came from."""
    donors: list[np.ndarray] = []
    source = "synthetic 8-bar texture"
    if SEGMENTS.is_file():
        from engine.models.segments import TEST, load_segments

        segments = load_segments(SEGMENTS)
        test = segments.indices(TEST)
        song = segments.song[test[0]]
        mine = test[(segments.song[test] == song) & (segments.bar[test] % 2 == 0)][:16]
        if len(mine) == 16:
            for p in range(4):
                rows = []
                for k, s in enumerate(mine[4 * p : 4 * p + 4]):
                    notes = segments.segment_notes(s).astype(np.int64)
                    rows.append(notes + np.array([32 * k, 0, 0, 0]))
                donors.append(np.concatenate(rows))
            source = f"POP909 held-out song {int(song):03d}, bars 0-31"
    if not donors:
        bar = [(0, 36, 4, 90)] + [(b * 4, p, 2, 60) for b in (1, 2, 3) for p in (60, 64, 67)]
        one = np.array([(o + 16 * k, p, d, v) for k in range(PHRASE_BARS) for o, p, d, v in bar])
        donors = [one] * 4
    beats = PHRASE_BARS * 4
    chroma = np.zeros((beats, 12), dtype=bool)
    chroma[:, [0, 4, 7]] = True
    phrases = [DonorPhrase(d, chroma, np.zeros(beats, int), 0, p * PHRASE_BARS * 16,
                           PHRASE_BARS * 16) for p, d in enumerate(donors)]
    return phrases, source


def song_chords() -> list[ChordEvent]:
    """vi-IV-I-V in C, two beats each, for 32 bars."""
    cycle = [Chord(9, "min", 9), Chord(5, "maj", 5), Chord(0, "maj", 0), Chord(7, "7", 7)]
    return [ChordEvent(cycle[i % 4], 8 * i, 8) for i in range(SONG_BARS * 2)]


def time_song(reharmonizer: object, runs: int) -> tuple[float, float, int]:
    phrases, chords = song_phrases()[0], song_chords()
    out = reharmonize_all(reharmonizer, phrases, chords)  # type: ignore[arg-type]
    med, p95 = warm_timings_ms(
        lambda: reharmonize_all(reharmonizer, phrases, chords), runs)  # type: ignore[arg-type]
    return med, p95, sum(len(o) for o in out)


def time_arrange(reharmonizer: str, runs: int) -> tuple[float, float] | None:
    from benchmarks.arrange_speed import donors_imported
    from benchmarks.harmonize_speed import long_melody
    from engine.pipeline import arrange
    from engine.types import ArrangeOptions

    if not donors_imported():
        return None
    melody = long_melody(SONG_BARS)
    options = ArrangeOptions(library="pop909", reharmonizer=reharmonizer)  # type: ignore[arg-type]
    return warm_timings_ms(lambda: arrange(melody, options), runs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--weights", type=Path, help="VAE weights (default: the shipped ones)")
    args = parser.parse_args(argv)
    import torch

    from engine.arranger.reharmonize import reharmonize_notes
    from engine.models.reharmonizer import WEIGHTS_ENV, learned_reharmonizer

    if args.weights is not None:  # the arrange rows load the model by this too
        os.environ[WEIGHTS_ENV] = str(args.weights)
    try:
        learned = learned_reharmonizer(args.weights)
    except LibraryError as err:
        print(f"vae_speed: {err}", file=sys.stderr)
        sys.exit(2)
    _, source = song_phrases()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; song: {source}")
    print(f"{'case':<52}{'median ms':>10}{'p95 ms':>9}{'goal':>7}{'ratio':>7}")
    for name, reharmonizer, goal in (("learned: 32-bar song, 16 segments batched", learned,
                                      GOAL_SONG_MS),
                                     ("rules: 32-bar song", reharmonize_notes, None)):
        med, p95, notes = time_song(reharmonizer, args.runs)
        ratio = f"{med / goal:>7.2f}" if goal else f"{'—':>7}"
        print(f"{name + f' ({notes} notes)':<52}{med:>10.1f}{p95:>9.1f}"
              f"{goal or '—':>7}{ratio}")
    for choice, goal in (("learned", GOAL_ARRANGE_MS), ("rules", None)):
        timed = time_arrange(choice, args.runs)
        if timed is None:
            print("POP909 donor library not imported: arrange rows skipped")
            break
        ratio = f"{timed[0] / goal:>7.2f}" if goal else f"{'—':>7}"
        print(f"{f'arrange 32 bars, pop909, reharmonizer={choice}':<52}{timed[0]:>10.1f}"
              f"{timed[1]:>9.1f}{goal or '—':>7}{ratio}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak RSS of this process (MB)':<52}{rss:>10.0f}{'':>9}{GOAL_RSS_MB:>7.0f}"
          f"{rss / GOAL_RSS_MB:>7.2f}")


if __name__ == "__main__":
    main()
