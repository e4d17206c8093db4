"""Ear-level harmony checks (docs/evaluation.md): what a musician hears before any fit metric.

Cadence, opening, repeated bars, agreement with the human chords, strong-beat dissonance and
sus chords, for one chord track against the melody (and the human chords where a check needs
them). Chords are read from the notes that sound (`engine.chord_names`), the same way for every
system. Share-like checks keep their counts, so a corpus pools them (pairs, slots, notes)
instead of averaging per-piece shares of very different sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.chord_names import SUS_QUALITIES, name_chord
from engine.grid import REST, note_span_16th
from engine.metrics.harmony import melody_notes
from engine.types import Note

NO_ROOT = -1
MIN_REPEAT_NOTES = 2  # a bar needs this many onsets to count as a recognisable repeat


@dataclass(frozen=True)
class ChordReading:
    """The chord track read per 16th: root pc (NO_ROOT: silence), sus or not, sounding tones."""

    root: np.ndarray  # (length,) int
    sus: np.ndarray  # (length,) bool
    tones: np.ndarray  # (length, 12) bool


def read_chords(notes: Sequence[Note], ticks_per_16th: float, length_16th: int) -> ChordReading:
    """Name the chord at every 16th from its pitch classes and its lowest note."""
    tones = np.zeros((length_16th, 12), dtype=bool)
    lowest = np.full(length_16th, 128, dtype=np.int64)
    for note in notes:
        start, end = note_span_16th(note, ticks_per_16th)
        start, end = max(start, 0), min(end, length_16th)
        if start < end:
            tones[start:end, note.pitch % 12] = True
            lowest[start:end] = np.minimum(lowest[start:end], note.pitch)
    masks = tones.astype(np.int64) @ (1 << np.arange(12))
    root = np.full(length_16th, NO_ROOT, dtype=np.int64)
    sus = np.zeros(length_16th, dtype=bool)
    names: dict[tuple[int, int], tuple[int, str]] = {}
    for step in np.flatnonzero(masks):
        key = (int(masks[step]), int(lowest[step] % 12))
        if key not in names:
            names[key] = name_chord(*key)
        root[step] = names[key][0]
        sus[step] = names[key][1] in SUS_QUALITIES
    return ChordReading(root, sus, tones)


@dataclass(frozen=True)
class EarChecks:
    """One chord track's ear-level checks on one piece (counts pool over a corpus)."""

    cadence: float  # 1.0 / 0.0: final chord root equals the human one; NaN: nothing to compare
    opening: float  # the same for the chord on phrase 1's first downbeat
    repeat_pairs: int  # pairs of bars with identical melody (≥ 2 onsets each)
    repeat_same: int  # … whose chord roots per 8th are identical
    root_slots: int  # 8th notes where the human chords sound
    root_hits: int  # … where this track's root equals the human root
    strong_notes: int  # melody notes on a beat, ≥ an 8th long, with a chord sounding
    strong_dissonant: int  # … a semitone from a chord tone and not one themselves
    chord_slots: int  # 8th notes with a chord
    sus_slots: int  # … whose chord is a sus chord
    phrase_ends: int  # phrase ends with a chord sounding at their last 16th
    unresolved_sus: int  # … where that chord is a sus chord

    @property
    def repeats(self) -> float:
        return _share(self.repeat_same, self.repeat_pairs)

    @property
    def root_accuracy(self) -> float:
        return _share(self.root_hits, self.root_slots)

    @property
    def strong_beat_dissonance(self) -> float:
        return _share(self.strong_dissonant, self.strong_notes)

    @property
    def sus_share(self) -> float:
        return _share(self.sus_slots, self.chord_slots)

    @property
    def unresolved_sus_share(self) -> float:
        return _share(self.unresolved_sus, self.phrase_ends)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _final_root(reading: ChordReading, lo: int, hi: int) -> int:
    sounding = np.flatnonzero(reading.root[lo:hi] != NO_ROOT)
    return int(reading.root[lo + sounding[-1]]) if sounding.size else NO_ROOT


def _opening_root(reading: ChordReading, downbeat: int, bar: int) -> int:
    """The chord on the first downbeat; if none sounds there, the first one in that bar."""
    sounding = np.flatnonzero(reading.root[downbeat : downbeat + bar] != NO_ROOT)
    return int(reading.root[downbeat + sounding[0]]) if sounding.size else NO_ROOT


def _same(a: int, b: int) -> float:
    return math.nan if NO_ROOT in (a, b) else float(a == b)


def _repeats(
    pitch: np.ndarray, onset: np.ndarray, root: np.ndarray, lo: int, hi: int, bar: int
) -> tuple[int, int]:
    """(pairs, same): bars with identical melody, and how many pairs share their chord roots."""
    groups: dict[bytes, list[bytes]] = {}
    for start in range(lo, hi - bar + 1, bar):
        notes = onset[start : start + bar] & (pitch[start : start + bar] != REST)
        if notes.sum() < MIN_REPEAT_NOTES:
            continue
        melody = pitch[start : start + bar].tobytes() + onset[start : start + bar].tobytes()
        groups.setdefault(melody, []).append(root[start : start + bar : 2].tobytes())
    pairs = same = 0
    for roots in groups.values():
        for i, a in enumerate(roots):
            for b in roots[i + 1 :]:
                pairs += 1
                same += a == b
    return pairs, same


def ear_checks(
    melody_pitch: np.ndarray,
    melody_onset: np.ndarray,
    chords: ChordReading,
    human: ChordReading,
    downbeat_16th: int,
    end_16th: int,
    bar_16th: int,
    beat_16th: int,
    phrase_ends_16th: Sequence[int] = (),
) -> EarChecks:
    """The checks of docs/evaluation.md over [downbeat_16th, end_16th) of the grids (all from
    the same step 0; `phrase_ends_16th` are the phrases' last bar lines)."""
    lo, hi = downbeat_16th, end_16th
    root, human_root = chords.root, human.root
    eighths = np.arange(lo, hi, 2)
    judged = eighths[human_root[eighths] != NO_ROOT]
    pairs, same = _repeats(melody_pitch, melody_onset, root, lo, hi, bar_16th)
    strong = dissonant = 0
    for note in melody_notes(melody_pitch, melody_onset):
        if not lo <= note.start_16th < hi or (note.start_16th - lo) % beat_16th:
            continue
        tones = chords.tones[note.start_16th]
        if note.duration_16th < 2 or not tones.any():
            continue
        strong += 1
        pc = note.pitch % 12
        dissonant += bool(not tones[pc] and (tones[(pc + 1) % 12] or tones[(pc - 1) % 12]))
    with_chord = eighths[root[eighths] != NO_ROOT]
    ends = [e - 1 for e in phrase_ends_16th if lo < e <= hi and root[e - 1] != NO_ROOT]
    return EarChecks(
        cadence=_same(_final_root(chords, lo, hi), _final_root(human, lo, hi)),
        opening=_same(_opening_root(chords, lo, bar_16th), _opening_root(human, lo, bar_16th)),
        repeat_pairs=pairs,
        repeat_same=same,
        root_slots=int(judged.size),
        root_hits=int((root[judged] == human_root[judged]).sum()),
        strong_notes=strong,
        strong_dissonant=dissonant,
        chord_slots=int(with_chord.size),
        sus_slots=int(chords.sus[with_chord].sum()),
        phrase_ends=len(ends),
        unresolved_sus=int(sum(bool(chords.sus[e]) for e in ends)),
    )


__all__ = ["ChordReading", "EarChecks", "ear_checks", "read_chords"]
