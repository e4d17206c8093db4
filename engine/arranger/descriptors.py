"""Texture descriptors of AccoMontage §3.3 / algorithms.md §2.1: the onset roll, rhythmic
density (RD), voice number (VN) and their 5-level quantisation (the "texture prefilter").

Shared by the default texture library and the POP909 importer, so both libraries speak the same
levels. The cutpoints are provisional, musically chosen constants; they are meant to be replaced
by POP909 quantiles once that library is imported.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from engine.types import LEVELS

# RD = share of 16th steps with an onset. Levels (provisional, before POP909 quantiles):
# 0 pads / half notes (< 0.16: a whole-bar pad is 1/16 in 4/4, 1/12 in 3/4 and 6/8),
# 1 quarter-note pulse (0.25; 2/12 for dotted quarters in 6/8),
# 2 quarters with some 8ths (~0.3-0.45), 3 straight or syncopated 8ths (0.5),
# 4 16th motion (>= 0.65).
DENSITY_CUTPOINTS: tuple[float, float, float, float] = (0.16, 0.3, 0.45, 0.65)

# VN = notes per attack on the beat / off-beat-8th grid. Levels (provisional):
# 0 single line (an arpeggio, with the bass joining on the downbeat: < 1.5),
# 1 line plus occasional dyads, 2 dyads / bass + one tone (~2.2-2.9),
# 3 triads (3) or bass + dyad, 4 bass + triad or richer (>= 3.6).
POLYPHONY_CUTPOINTS: tuple[float, float, float, float] = (1.5, 2.2, 2.9, 3.6)

_PITCHES = 128


def onset_roll(notes: np.ndarray, length_16th: int) -> np.ndarray:
    """(length_16th, 128) bool roll with True where a note starts.

    `notes` is an int array of rows (onset_16th, pitch, duration_16th, velocity); onsets outside
    [0, length_16th) and pitches outside 0..127 are ignored (a phrase cut from a longer song may
    carry neighbours' notes)."""
    roll = np.zeros((max(0, length_16th), _PITCHES), dtype=bool)
    if notes.size == 0:
        return roll
    rows = np.asarray(notes, dtype=np.int64).reshape(-1, notes.shape[-1])
    onset, pitch = rows[:, 0], rows[:, 1]
    keep = (onset >= 0) & (onset < length_16th) & (pitch >= 0) & (pitch < _PITCHES)
    roll[onset[keep], pitch[keep]] = True
    return roll


def rhythmic_density(onsets: np.ndarray) -> float:
    """RD (algorithms.md §2.1): the share of 16th steps holding at least one onset."""
    if onsets.shape[0] == 0:
        return 0.0
    return float(np.count_nonzero(onsets.any(axis=1))) / onsets.shape[0]


def voice_number(onsets: np.ndarray, beat_16th: int = 4) -> float:
    """VN (algorithms.md §2.1): max(mean #onsets on beats, mean #onsets on off-beat 8ths).

    "Counting onset positions only": each mean is taken over the grid positions of its kind that
    hold at least one onset, so VN measures how many notes are struck together, not how often
    (rests and 16th-only figures do not dilute it). Beat positions are multiples of `beat_16th`
    (6 in 6/8, 8 in 2/2); off-beat 8ths are the other even steps. A kind with no onsets counts
    0; an empty roll gives 0.0."""
    if beat_16th <= 0:
        raise ValueError(f"beat_16th must be positive, got {beat_16th}")
    counts = onsets.sum(axis=1)
    steps = np.arange(counts.shape[0])
    on_beat = steps % beat_16th == 0
    off_beat = (steps % 2 == 0) & ~on_beat

    def mean_struck(mask: np.ndarray) -> float:
        struck = counts[mask]
        struck = struck[struck > 0]
        return float(struck.mean()) if struck.size else 0.0

    return max(mean_struck(on_beat), mean_struck(off_beat))


def level(value: float, cutpoints: Sequence[float]) -> int:
    """The level 0..4 of a descriptor value: how many cutpoints it reaches (a value equal to a
    cutpoint belongs to the upper level)."""
    return min(LEVELS - 1, bisect_right(list(cutpoints), value))
