"""Micro score: note-wise melody/chord consonance (AccoMontage2 §3.2.1, algorithms.md §1.2).

Each 8th-note chord slot is scored against the two melody 16ths under it with a table indexed
by the chord (row) and the melody pitch class (semitones above the tonic). `root_table` is the
paper's: rows by root *semitone* 0..11 (the degree rows I..VII sit at the diatonic semitones of
the mode). `chord_table` expands rows to (root, triad class) so the score can see the chord's
quality: the paper and release rules repeat the root row for every quality; our "consonance"
rule blends the paper row with the consonance of the melody note against the chord's own
triad (the interval classes of Yeh et al.'s PCS), so a D-major chord is no longer scored as
D minor under an F♯.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from engine.chords import TRIADS, chord_pitch_classes, triad_of
from engine.types import Mode

REST_SCORE = 0.5  # the paper scores a rest 0.5 whatever the chord
NO_CHORD_SCORE = 0.3  # ours: an N.C. slot under a sounding note is weak but not forbidden
ROOT_NO_CHORD_ROW = 12  # in root_table
NO_CHORD_ROW = 12 * len(TRIADS)  # in chord_table
CHORD_ROWS = NO_CHORD_ROW + 1
CONSONANCE_BLEND = 0.5  # share of the consonance term in our rule
# Melody-minus-chord interval classes as PCS scores them: +1 consonant, 0 fourth, −1 dissonant.
_PCS_VALUE = np.array([1, -1, -1, 1, 1, 0, -1, 1, 1, 1, -1, -1], dtype=float)

# Paper's major table, rows I..VII, columns = melody semitones 0..11 above the tonic (§3.2.1).
_MAJOR_PAPER = np.array(
    [
        [1, .1, .4, .15, .75, .7, .1, .9, .1, .7, .15, .2],
        [.4, .1, 1, .1, .4, .75, .4, .5, .1, .9, .15, .4],
        [.5, .1, .4, .15, 1, .3, .2, .75, .2, .6, .15, .9],
        [.9, .1, .6, .2, .5, 1, .1, .4, .4, .75, .2, .2],
        [.5, .1, .9, .1, .5, .5, .1, 1, .1, .5, .75, .15],
        [.75, .1, .6, .15, .9, .5, .1, .4, .1, 1, .15, .4],
        [.4, .1, .8, .15, .6, .8, .1, .6, .1, .4, .15, 1],
    ]
)
DIATONIC_ROOTS: dict[Mode, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}
_MINOR_SWAPS = ((3, 4), (8, 9), (10, 11))
_DEGREE_V = 4

ChromaticRule = Literal["rotate", "truncate"]
MicroRule = Literal["consonance", "paper"]


def degree_table(mode: Mode, fix_leading_tone: bool = True) -> np.ndarray:
    """The 7×12 table for one mode (§1.2): minor swaps columns 3↔4, 8↔9, 10↔11, except that
    row v keeps ♭7 as its chord tone. `fix_leading_tone` gives major row V the leading tone
    (11) instead of ♭7 (10), matching every other row's root/third/fifth pattern."""
    table = _MAJOR_PAPER.copy()
    if mode == "major":
        if fix_leading_tone:
            table[_DEGREE_V, 10], table[_DEGREE_V, 11] = 0.15, 0.75
        return table
    for a, b in _MINOR_SWAPS:
        table[:, [a, b]] = table[:, [b, a]]
    # row v keeps .75 at 10 and .15 at 11 (the release's minor v is a minor chord)
    table[_DEGREE_V, 10], table[_DEGREE_V, 11] = 0.75, 0.15
    return table


def root_table(
    mode: Mode, fix_leading_tone: bool = True, chromatic: ChromaticRule = "rotate"
) -> np.ndarray:
    """13×12 table indexed by root semitone (row 12 = N.C.), the paper's rows.

    Chromatic roots: the release truncates them down to the degree below (♭VII scored as vi);
    ours rotates the tonic-major row I pattern onto the chromatic root, i.e. scores it as the
    major triad such roots almost always carry (♭III, ♭VI, ♭VII, II⁷ …)."""
    degrees = degree_table(mode, fix_leading_tone)
    diatonic = DIATONIC_ROOTS[mode]
    major_i = degree_table("major", fix_leading_tone)[0]
    table = np.empty((ROOT_NO_CHORD_ROW + 1, 12))
    for root in range(12):
        if root in diatonic:
            table[root] = degrees[diatonic.index(root)]
        elif chromatic == "rotate":
            table[root] = np.roll(major_i, root)
        else:
            below = max(d for d in diatonic if d < root)
            table[root] = degrees[diatonic.index(below)]
    table[ROOT_NO_CHORD_ROW] = NO_CHORD_SCORE
    return table


def chord_row(root: int, quality: str) -> int:
    """Row of `chord_table` for a template chord (root < 0 means N.C.)."""
    if root < 0:
        return NO_CHORD_ROW
    return root * len(TRIADS) + TRIADS.index(triad_of(quality))


def consonance_row(root: int, triad: str) -> np.ndarray:
    """For every melody pitch class: mean PCS interval score against the triad, mapped to 0..1."""
    tones = sorted(chord_pitch_classes(root, triad))
    melody = np.arange(12)
    values = np.mean([_PCS_VALUE[(melody - t) % 12] for t in tones], axis=0)
    return (values + 1.0) / 2.0


@lru_cache(maxsize=32)
def chord_table(
    mode: Mode, rule: MicroRule = "consonance", fix_leading_tone: bool = True,
    chromatic: ChromaticRule = "rotate",
) -> np.ndarray:
    """(12·triads + 1) × 12 table by chord row; see the module docstring for the rules."""
    roots = root_table(mode, fix_leading_tone, chromatic)
    table = np.empty((CHORD_ROWS, 12))
    for root in range(12):
        for q, triad in enumerate(TRIADS):
            row = roots[root]
            if rule == "consonance":
                row = (1 - CONSONANCE_BLEND) * row + CONSONANCE_BLEND * consonance_row(root, triad)
            table[root * len(TRIADS) + q] = row
    table[NO_CHORD_ROW] = NO_CHORD_SCORE
    table.setflags(write=False)  # shared through the cache
    return table


def slot_scores(melody_pc: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Score of every table row for every 8th-note slot: mean over its two 16ths.

    `melody_pc` holds semitones above the tonic per 16th, -1 for a rest; an odd length is
    padded with a rest. Returns (n_slots, table rows)."""
    pcs = melody_pc if len(melody_pc) % 2 == 0 else np.append(melody_pc, -1)
    per_16th = np.where(pcs[:, None] >= 0, table[:, np.maximum(pcs, 0)].T, REST_SCORE)
    return per_16th.reshape(-1, 2, table.shape[0]).mean(axis=1)


def micro_scores(slot_table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean slot score of each candidate (rows: candidates × slots of table rows)."""
    n_slots = rows.shape[1]
    return slot_table[np.arange(n_slots), rows].mean(axis=1)
