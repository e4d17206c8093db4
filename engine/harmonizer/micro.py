"""Micro score: note-wise melody/chord consonance (AccoMontage2 §3.2.1, algorithms.md §1.2).

Each 8th-note chord slot is scored against the two melody 16ths under it with a table indexed
by the chord (row) and the melody pitch class (semitones above the tonic). `root_table` is the
paper's: rows by root *semitone* 0..11 (the degree rows I..VII sit at the diatonic semitones of
the mode). `chord_table` expands rows to (root, triad class) so the score can see the chord's
quality: the paper and release rules repeat the root row for every quality; our "quality" rule
moves the row's chord-tone values onto the chord's own tones — the third the chord has gets the
row's third value, the other third the lower one, a diminished or augmented fifth the fifth's
value, a sus chord's suspended tone the third's — so D major is no longer scored as D minor
under an F♯, and in minor the major V (the harmonic-minor dominant) fits a sung leading tone
while i and v do not. (An earlier rule blended the row with PCS consonance; with the tonic-
balance term it pulled tune endings away from the tonic — issue 10's ablations.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from engine.chords import INTERVALS, TRIADS, triad_of
from engine.types import Mode

REST_SCORE = 0.5  # the paper scores a rest 0.5 whatever the chord
NO_CHORD_SCORE = 0.3  # ours: an N.C. slot under a sounding note is weak but not forbidden
ROOT_NO_CHORD_ROW = 12  # in root_table
NO_CHORD_ROW = 12 * len(TRIADS)  # in chord_table
CHORD_ROWS = NO_CHORD_ROW + 1

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
MicroRule = Literal["quality", "paper"]


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


_SUS_TONE = {"sus2": 2, "sus4": 5}


def quality_row(row: np.ndarray, root: int, triad: str) -> np.ndarray:
    """Our rule: the root's row with its chord-tone values moved onto the triad's own tones."""
    out = row.copy()
    minor3, major3 = (root + 3) % 12, (root + 4) % 12
    third, other = max(row[minor3], row[major3]), min(row[minor3], row[major3])
    if triad in ("maj", "aug"):
        out[major3], out[minor3] = third, other
    elif triad in ("min", "dim"):
        out[minor3], out[major3] = third, other
    else:  # sus: neither third belongs to the chord; the suspended tone takes the third's place
        out[minor3] = out[major3] = other
        sus = (root + _SUS_TONE[triad]) % 12
        out[sus] = max(row[sus], third)
    fifth = (root + 7) % 12
    altered = {"dim": (root + 6) % 12, "aug": (root + 8) % 12}.get(triad)
    if altered is not None:
        out[altered], out[fifth] = row[fifth], row[altered]
    return out


@lru_cache(maxsize=32)
def chord_table(
    mode: Mode, rule: MicroRule = "quality", fix_leading_tone: bool = True,
    chromatic: ChromaticRule = "rotate",
) -> np.ndarray:
    """(12·triads + 1) × 12 table by chord row; see the module docstring for the rules."""
    roots = root_table(mode, fix_leading_tone, chromatic)
    table = np.empty((CHORD_ROWS, 12))
    for root in range(12):
        for q, triad in enumerate(TRIADS):
            row = roots[root]
            table[root * len(TRIADS) + q] = (
                quality_row(row, root, triad) if rule == "quality" else row
            )
    table[NO_CHORD_ROW] = NO_CHORD_SCORE
    table.setflags(write=False)  # shared through the cache
    return table


STRONG_BEAT_CLASH = 1.0  # ours: taken off a slot whose beat note clashes with the chord


@lru_cache(maxsize=1)
def clash_table() -> np.ndarray:
    """(CHORD_ROWS, 12) bool: the melody pitch class (above the tonic) is a semitone from one
    of the row's triad tones and not a triad tone itself (Dm under a sung C♯)."""
    table = np.zeros((CHORD_ROWS, 12), dtype=bool)
    for root in range(12):
        for q, triad in enumerate(TRIADS):
            tones = {(root + i) % 12 for i in INTERVALS[triad]}
            for pc in range(12):
                near = (pc + 1) % 12 in tones or (pc - 1) % 12 in tones
                table[root * len(TRIADS) + q, pc] = pc not in tones and near
    table.setflags(write=False)
    return table


def strong_beat_clashes(melody_pc: np.ndarray, beat_16th: int) -> np.ndarray:
    """Ours: (n_slots, CHORD_ROWS) 1.0 where a melody note starting on a beat and lasting at
    least an 8th clashes with the row's triad (the ear-level strong-beat dissonance check).
    `melody_pc` as for `slot_scores`, from a bar line; a new note = a change of pitch."""
    n_slots = -(-len(melody_pc) // 2)
    out = np.zeros((n_slots, CHORD_ROWS))
    steps = np.arange(0, len(melody_pc), beat_16th)
    prev = np.concatenate([[-2], melody_pc[:-1]])
    nxt = np.concatenate([melody_pc[1:], [-2]])
    starts = steps[(melody_pc[steps] >= 0) & (prev[steps] != melody_pc[steps])
                   & (nxt[steps] == melody_pc[steps])]
    clash = clash_table()
    for t in starts.tolist():
        out[t // 2] = clash[:, int(melody_pc[t])]
    return out


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
