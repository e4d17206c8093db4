"""Groove consistency of POP909-donor arrangements with the rule-based vs the learned transition
score: `python -m benchmarks.groove_consistency`.

Held-out POP909 melodies (`benchmarks.eval_corpus`, key and phrases given as a user would) are
arranged with the donor library twice, ArrangeOptions.transition = "rules" (onset-profile
continuity) and "learned" (contrastive texture embeddings, engine.models.transition). Measured
on the piano part, with POP909's own piano as the reference:
- adjacent 2-bar windows: cosine of their 32-step onset profiles, for neighbouring windows
  inside a phrase ("in") and for a phrase's last 2 bars vs the next phrase's first 2 ("x");
- bar-pair onset Jaccard within vs across phrases (engine.metrics.accompaniment.groove_consistency);
- how many phrases get another donor, the chosen donors' fitness, chord-tone ratio and melody
  clash rate (what a transition score might cost), and the warm arrange time per piece; plus the
  32-bar speed goal (≤ 150 ms median, warm, learned parts on) and the first-call cost.
Needs the imported donor library; skips cleanly without it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

RULES: Final = "rules"
LEARNED: Final = "learned"
HUMAN = "human"
TITLES = {RULES: "rule transition", LEARNED: "learned transition", HUMAN: "POP909 piano (human)"}
SPEED_GOAL_MS = 150.0
SPEED_BARS = 32
WINDOW_BARS = 2
BAR_16TH = 16


@dataclass
class GrooveRow:
    """Per system: pooled window-pair cosines and per-piece Jaccard means."""

    within: list[float] = field(default_factory=list)
    across: list[float] = field(default_factory=list)
    jaccard_within: list[float] = field(default_factory=list)
    jaccard_across: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    fitness: list[float] = field(default_factory=list)  # chosen donors' selection fitness
    chord_tone: list[float] = field(default_factory=list)
    clash: list[float] = field(default_factory=list)
    pieces: int = 0


def onset_profile(rows: np.ndarray, length_16th: int) -> np.ndarray:
    """Onset count per 16th from step 0."""
    profile = np.zeros(length_16th)
    onsets = np.asarray(rows[:, 0], dtype=np.int64) if len(rows) else np.zeros(0, np.int64)
    onsets = onsets[(onsets >= 0) & (onsets < length_16th)]
    np.add.at(profile, onsets, 1.0)
    return profile


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else math.nan


def window_similarity(
    profile: np.ndarray, phrases: Sequence[tuple[int, int]]
) -> tuple[list[float], list[float]]:
    """(within, across): onset-profile cosines of neighbouring non-overlapping 2-bar windows
    inside each phrase, and of each phrase's last 2 bars vs the next phrase's first 2."""
    w = WINDOW_BARS * BAR_16TH

    def window(start_bar: int) -> np.ndarray:
        """2 bars from `start_bar`, zero-padded past the end of the part."""
        out = np.zeros(w)
        part = profile[start_bar * BAR_16TH : start_bar * BAR_16TH + w]
        out[: len(part)] = part
        return out

    within, across = [], []
    for start, end in phrases:
        for bar in range(start, end - 2 * WINDOW_BARS + 1, WINDOW_BARS):
            within.append(_cos(window(bar), window(bar + WINDOW_BARS)))
    for (first, end), (start, _) in zip(phrases, phrases[1:], strict=False):
        across.append(_cos(window(max(end - WINDOW_BARS, first)), window(start)))
    return [v for v in within if not math.isnan(v)], [v for v in across if not math.isnan(v)]


def score_piece(row: GrooveRow, rows: np.ndarray, start: int, end: int,
                phrases: Sequence[tuple[int, int]]) -> None:
    from engine.metrics.accompaniment import groove_consistency

    shifted = np.array(rows, dtype=np.int64).reshape(-1, 4) if len(rows) else np.zeros((0, 4))
    shifted[:, 0] -= start
    last_bar = max((e for _, e in phrases), default=0) + WINDOW_BARS
    profile = onset_profile(shifted, max(end - start, last_bar * BAR_16TH))
    within, across = window_similarity(profile, phrases)
    row.within += within
    row.across += across
    groove = groove_consistency(profile > 0, BAR_16TH, phrases)
    row.jaccard_within.append(groove.within)
    row.jaccard_across.append(groove.across)
    row.pieces += 1


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def speed(runs: int) -> dict[str, float]:
    """Warm median arrange time of a 32-bar melody, rules vs learned, and the first learned
    arrange of this process (it embeds the donors or reads their disk cache)."""
    from benchmarks.harmonize_speed import long_melody
    from engine.pipeline import arrange
    from engine.types import ArrangeOptions

    melody = long_melody(SPEED_BARS)
    rules = ArrangeOptions(library="pop909", transition=RULES)
    learned = ArrangeOptions(library="pop909", transition=LEARNED)
    arrange(melody, rules)  # loads the donor library
    began = time.perf_counter()
    arrange(melody, learned)
    out = {"first_learned_s": time.perf_counter() - began}
    took: dict[str, list[float]] = {RULES: [], LEARNED: []}
    for _ in range(runs):  # interleaved, so both see the same machine load
        for name, options in ((RULES, rules), (LEARNED, learned)):
            t = time.perf_counter()
            arrange(melody, options)
            took[name].append(time.perf_counter() - t)
    for name, times in took.items():
        out[f"{name}_median_ms"] = 1000 * statistics.median(times)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.groove_consistency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="held-out POP909 songs")
    parser.add_argument("--runs", type=int, default=30, help="timed runs for the speed goal")
    args = parser.parse_args(argv)
    from benchmarks.arrange_quality import arranger_targets, human_piano, judge, phrase_bars
    from benchmarks.eval_corpus import load_eval_corpus
    from engine.library.pop909_textures import load_donor_library
    from engine.metrics.accompaniment import note_rows
    from engine.models.transition import WEIGHTS
    from engine.pipeline import arrange
    from engine.types import ArrangeOptions

    donors = load_donor_library()
    if donors is None:
        print("POP909 donor library not imported: nothing to compare (import it with "
              "`accobridge library import-pop909 PATH`)")
        return 0
    if not WEIGHTS.exists():
        print(f"no texture embedding weights at {WEIGHTS}: nothing to compare")
        return 0
    began = time.perf_counter()
    timing = speed(args.runs)
    corpus = load_eval_corpus(args.limit, 0)
    items = [i for i in corpus.items if i.meter.name == "4/4"]
    if not items:
        print("no held-out POP909 songs (shared data folder not found)", file=sys.stderr)
        return 1
    table = {name: GrooveRow() for name in (RULES, LEARNED, HUMAN)}
    changed = phrases_total = 0
    for item in items:
        phrases = phrase_bars(item.phrases)
        chosen: dict[str, list[str]] = {}
        for name in (RULES, LEARNED):
            options = ArrangeOptions(harmonize=item.given_options(), library="pop909",
                                     transition=LEARNED if name == LEARNED else RULES)
            t = time.perf_counter()
            arrangement = arrange(item.melody, options)
            table[name].seconds.append(time.perf_counter() - t)
            chosen[name] = [c.name for c in arrangement.textures]
            rows = note_rows(arrangement.piano_notes, item.melody.ticks_per_16th)
            score_piece(table[name], rows, item.downbeat_16th, item.end_16th, phrases)
            table[name].fitness += [c.fitness for c in arrangement.textures]
            tones, roots = arranger_targets(arrangement.harmonization.chords, item.end_16th)
            quality = judge(item, rows, tones, roots, donors)
            table[name].chord_tone.append(quality.chord_tone_ratio)
            table[name].clash.append(quality.melody_clash_rate)
        changed += sum(a != b for a, b in zip(chosen[RULES], chosen[LEARNED], strict=True))
        phrases_total += len(chosen[RULES])
        human_rows, *_ = human_piano(item)
        score_piece(table[HUMAN], human_rows, item.downbeat_16th, item.end_16th, phrases)
    print(f"{len(items)} held-out POP909 songs, {phrases_total} phrases")
    print(f"{'':<24}{'2-bar in':>10}{'2-bar x':>10}{'x/in':>8}{'Jacc in':>10}{'Jacc x':>10}"
          f"{'fitness':>9}{'CT':>7}{'clash':>7}{'ms/piece':>10}")
    for name, row in table.items():
        w, x = _mean(row.within), _mean(row.across)
        ms = 1000 * statistics.median(row.seconds) if row.seconds else math.nan
        print(f"{TITLES[name]:<24}{w:>10.3f}{x:>10.3f}{x / w:>8.3f}"
              f"{_mean(row.jaccard_within):>10.3f}{_mean(row.jaccard_across):>10.3f}"
              f"{_mean(row.fitness):>9.3f}{_mean(row.chord_tone):>7.3f}{_mean(row.clash):>7.3f}"
              f"{'—' if math.isnan(ms) else f'{ms:.0f}':>10}")
    print(f"learned vs rule transition: {changed}/{phrases_total} phrases "
          f"({changed / max(phrases_total, 1):.0%}) get another donor")
    learned_ms = timing["learned_median_ms"]
    print(f"speed, {SPEED_BARS}-bar melody (warm median of {args.runs}): rules "
          f"{timing['rules_median_ms']:.0f} ms, learned {learned_ms:.0f} ms "
          f"(goal ≤ {SPEED_GOAL_MS:.0f} ms: ratio {learned_ms / SPEED_GOAL_MS:.2f})"
          f"; first learned arrange in a process {timing['first_learned_s']:.2f} s")
    print("2-bar in/x: onset-profile cosine of neighbouring 2-bar windows inside a phrase / "
          "across a phrase boundary; x/in near 1 = no groove break at boundaries. Jacc: "
          "bar-pair onset Jaccard within/across phrases (engine.metrics); fitness: mean "
          "selection fitness of the chosen donors (0.5 rhythm + 0.5 chord); CT, clash: "
          "chord-tone ratio and melody clash rate (benchmarks.arrange_quality).")
    print(f"time: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
