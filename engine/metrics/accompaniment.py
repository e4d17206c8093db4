"""Objective accompaniment metrics on the 16th-note grid (docs/evaluation.md): chord-tone ratio,
melody clash rate, share of notes above the melody, groove consistency, chord recognizability,
and the bundle `AccompanimentMetrics` with rhythmic density and voice number (those two are
`engine.arranger.descriptors`, the arranger's own definitions). Pure numpy.

An accompaniment is an int array with one row per note: (onset_16th, pitch, duration_16th, …)
— the layout of `engine.arranger.descriptors.onset_roll` and of POP909's piano as
`engine.build.pop909_midi` reads it; `note_rows` converts `Note`s. Columns after the third
(velocity) are ignored. Every grid handed to these functions starts at the same step 0, which
is a bar line when bars or phrases matter; the caller cuts grids and shifts notes to the span
it wants judged. A note sounds on the steps [onset, onset + max(duration, 1)) inside the grid.

Choices the definitions leave open, decided here once:
- Chord-tone ratio and clash rate weigh each note by its sounding 16ths (overlapping notes
  each count). Chord-tone ratio leaves out steps with no target chord; clash rate leaves out
  steps where the melody rests (nothing to clash with), so it is the share of the
  accompaniment's duration *under the melody* that clashes.
- Above-melody share counts notes, not duration: notes starting while a melody note sounds,
  and of those the ones strictly higher than it. Notes starting in a melody rest are left out.
- Groove consistency compares the onset patterns A, B of two bars (any accompaniment onset at
  a 16th position) by Jaccard similarity |A ∧ B| / |A ∨ B|, so it measures sameness of rhythm
  and not density (a dense texture does not score high just by filling both bars); a pair of
  bars that are both silent is left out. "Within" averages all pairs of different bars of the
  same phrase, "across" all pairs of bars in different phrases; ratio = within / across.
- Chord recognizability: per beat, the pitch-class profile of the accompaniment (16ths sounded
  per pitch class) is matched against the 24 major/minor triad templates by dot product; ties
  go to the template whose root sounds longest, then to the lower template index (majors
  C..B, then minors C..B). A beat counts as recognized when the template's root equals the
  intended chord's root (quality is not compared: sevenths, sus and 9th chords have no exact
  triad template). Beats with no intended chord are left out; a silent beat is a miss.
- RD and VN are measured per phrase with `engine.arranger.descriptors` and levelled with its
  cut points (or the caller's, per phrase); `rhythmic_density` / `voice_number` are the means
  over phrases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.arranger.descriptors import (
    DENSITY_CUTPOINTS,
    POLYPHONY_CUTPOINTS,
    level,
    onset_roll,
    rhythmic_density,
    voice_number,
)
from engine.chords import chord_pitch_classes
from engine.grid import REST, note_span_16th
from engine.metrics.harmony import PITCH_CLASSES
from engine.types import ChordEvent, Note

NOTE_ONSET, NOTE_PITCH, NOTE_DURATION = 0, 1, 2  # columns of an accompaniment note array
CLASH_INTERVALS = (1, 6, 11)  # (accompaniment − melody) mod 12: minor 2nd, tritone, major 7th
NO_CHORD = -1


def _triad_templates() -> np.ndarray:
    """24 × 12 binary pitch-class templates: major triads on C..B, then minor triads on C..B."""
    templates = np.zeros((2 * PITCH_CLASSES, PITCH_CLASSES), dtype=np.int64)
    for root in range(PITCH_CLASSES):
        for row, third in ((root, 4), (PITCH_CLASSES + root, 3)):
            templates[row, [root, (root + third) % PITCH_CLASSES, (root + 7) % PITCH_CLASSES]] = 1
    return templates


TRIAD_TEMPLATES: np.ndarray = _triad_templates()
TEMPLATE_ROOTS: np.ndarray = np.arange(2 * PITCH_CLASSES) % PITCH_CLASSES


@dataclass(frozen=True)
class GrooveConsistency:
    """Mean bar-pair onset similarity within phrases and across phrases (NaN: no such pair)."""

    within: float
    across: float
    ratio: float  # within / across; > 1 means bars of one phrase share their rhythm more


@dataclass(frozen=True)
class AccompanimentMetrics:
    """The accompaniment measures of one piece (↑: chord-tone ratio, recognizability; ↓: clash,
    above-melody share). Levels are per phrase, in phrase order."""

    chord_tone_ratio: float
    melody_clash_rate: float
    above_melody_share: float
    rhythmic_density: float  # mean over phrases
    voice_number: float  # mean over phrases
    phrase_densities: tuple[float, ...]
    phrase_voice_numbers: tuple[float, ...]
    density_levels: tuple[int, ...]
    polyphony_levels: tuple[int, ...]
    groove_within: float
    groove_across: float
    groove_ratio: float
    chord_recognizability: float


def note_rows(notes: Sequence[Note], ticks_per_16th: float, shift_16th: int = 0) -> np.ndarray:
    """`Note`s as accompaniment rows (onset_16th, pitch, duration_16th, velocity).

    Quantised like the melody grid; `shift_16th` is subtracted from every onset (to start the
    grid at a bar line).
    """
    rows = np.zeros((len(notes), 4), dtype=np.int64)
    for i, note in enumerate(notes):
        start, end = note_span_16th(note, ticks_per_16th)
        rows[i] = (start - shift_16th, note.pitch, end - start, note.velocity)
    return rows


def _rows(notes: np.ndarray) -> np.ndarray:
    rows = np.asarray(notes, dtype=np.int64)
    if rows.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] < 3:
        raise ValueError(
            f"accompaniment notes must be rows of (onset_16th, pitch, duration_16th, …), "
            f"got shape {rows.shape}"
        )
    return rows


def _sounding(rows: np.ndarray, length_16th: int) -> tuple[np.ndarray, np.ndarray]:
    """(note index, step) for every 16th each note sounds inside [0, length_16th)."""
    durations = np.maximum(rows[:, NOTE_DURATION], 1)
    index = np.repeat(np.arange(rows.shape[0]), durations)
    first = np.repeat(np.cumsum(durations) - durations, durations)
    steps = rows[index, NOTE_ONSET] + np.arange(index.size) - first
    inside = (steps >= 0) & (steps < length_16th)
    return index[inside], steps[inside]


def chord_tone_ratio(notes: np.ndarray, chord_pcs: np.ndarray) -> float:
    """Share of accompaniment 16ths whose pitch class is in the target chord at that step.

    `chord_pcs` is the target chord per 16th (length × 12 bool, e.g. `chord_pcs_grid`); steps
    without a chord are not judged. NaN when no note sounds under a chord.
    """
    rows = _rows(notes)
    chords = np.asarray(chord_pcs, dtype=bool)
    index, steps = _sounding(rows, chords.shape[0])
    judged = chords[steps].any(axis=1)
    if not judged.any():
        return math.nan
    hits = chords[steps, rows[index, NOTE_PITCH] % PITCH_CLASSES]
    return float(hits[judged].mean())


def melody_clash_rate(notes: np.ndarray, melody_pitch: np.ndarray) -> float:
    """Share of accompaniment 16ths under a melody note forming interval class 1, 6 or 11 with it.

    NaN when no accompaniment note sounds together with the melody.
    """
    rows = _rows(notes)
    melody = np.asarray(melody_pitch)
    index, steps = _sounding(rows, melody.shape[0])
    under = melody[steps] != REST
    if not under.any():
        return math.nan
    intervals = (rows[index[under], NOTE_PITCH] - melody[steps[under]]) % PITCH_CLASSES
    return float(np.isin(intervals, CLASH_INTERVALS).mean())


def above_melody_share(notes: np.ndarray, melody_pitch: np.ndarray) -> float:
    """Share of accompaniment notes (counted, not weighted) starting above the sounding melody note.

    Only notes starting while a melody note sounds are counted; NaN when there is none.
    """
    rows = _rows(notes)
    melody = np.asarray(melody_pitch)
    onsets = rows[:, NOTE_ONSET]
    inside = (onsets >= 0) & (onsets < melody.shape[0])
    under = melody[onsets[inside]]
    judged = under != REST
    if not judged.any():
        return math.nan
    return float((rows[inside, NOTE_PITCH][judged] > under[judged]).mean())


def groove_consistency(
    onsets: np.ndarray, bar_16th: int, phrase_bars: Sequence[tuple[int, int]]
) -> GrooveConsistency:
    """Within- vs across-phrase Jaccard similarity of bar onset patterns (see the notes above).

    `onsets` is an onset grid from step 0 (a bar line): per 16th (length,) or per 16th and pitch
    (length × 128, e.g. `onset_roll`); `phrase_bars` the phrases as (start_bar, end_bar), end
    exclusive. Bars outside every phrase are not compared.
    """
    if bar_16th < 1:
        raise ValueError(f"bar_16th must be at least 1, got {bar_16th}")
    grid = np.asarray(onsets, dtype=bool)
    if grid.ndim == 2:
        grid = np.any(grid, axis=1)
    bars = max((end for _, end in phrase_bars), default=0)
    padded = np.zeros(bars * bar_16th, dtype=bool)
    used = min(grid.shape[0], padded.size)
    padded[:used] = grid[:used]
    patterns = padded.reshape(bars, bar_16th).astype(np.int64)
    phrase_of = np.full(bars, -1)
    for number, (start, end) in enumerate(phrase_bars):
        phrase_of[start:end] = number
    both = patterns @ patterns.T
    counts = patterns.sum(axis=1)
    either = counts[:, None] + counts[None, :] - both
    pairs = np.triu(np.ones((bars, bars), dtype=bool), k=1) & (either > 0)
    pairs &= (phrase_of[:, None] >= 0) & (phrase_of[None, :] >= 0)
    same = phrase_of[:, None] == phrase_of[None, :]
    similarity = both / np.maximum(either, 1)
    within = float(similarity[pairs & same].mean()) if (pairs & same).any() else math.nan
    across = float(similarity[pairs & ~same].mean()) if (pairs & ~same).any() else math.nan
    ratio = within / across if across > 0 else math.nan
    return GrooveConsistency(within, across, ratio)


def roots_per_beat(chords: Sequence[ChordEvent], length_16th: int, beat_16th: int) -> np.ndarray:
    """Root pitch class of the chord sounding at each beat's first step (NO_CHORD where none).

    Chord times are taken as steps of the grid (shift the events to the grid's step 0 first).
    """
    if beat_16th < 1:
        raise ValueError(f"beat_16th must be at least 1, got {beat_16th}")
    per_step = np.full(length_16th, NO_CHORD, dtype=np.int64)
    for event in chords:
        start, end = max(event.start_16th, 0), min(event.end_16th, length_16th)
        per_step[start:end] = event.chord.root_pc % PITCH_CLASSES
    return per_step[::beat_16th].copy()


def chord_target_grid(chords: Sequence[ChordEvent], length_16th: int) -> np.ndarray:
    """Target pitch classes per 16th (length × 12 bool) of chord events, full chord quality."""
    grid = np.zeros((length_16th, PITCH_CLASSES), dtype=bool)
    for event in chords:
        start, end = max(event.start_16th, 0), min(event.end_16th, length_16th)
        if start < end:
            pcs = sorted(chord_pitch_classes(event.chord.root_pc, event.chord.quality))
            grid[start:end, pcs] = True
    return grid


def recognize_chords(notes: np.ndarray, length_16th: int, beat_16th: int) -> np.ndarray:
    """Best of the 24 triad templates per beat (0–11 major, 12–23 minor on roots C..B;
    NO_CHORD for a silent beat), from the accompaniment's pitch-class duration profile."""
    if beat_16th < 1:
        raise ValueError(f"beat_16th must be at least 1, got {beat_16th}")
    rows = _rows(notes)
    beats = -(-length_16th // beat_16th)
    index, steps = _sounding(rows, length_16th)
    profile = np.zeros((beats, PITCH_CLASSES), dtype=np.int64)
    np.add.at(profile, (steps // beat_16th, rows[index, NOTE_PITCH] % PITCH_CLASSES), 1)
    scores = (profile @ TRIAD_TEMPLATES.T).astype(float)
    # tie-break: the dot products are whole numbers, this bonus stays below 1
    root_time = profile[:, TEMPLATE_ROOTS]
    scores += root_time / (2.0 * (profile.sum(axis=1, keepdims=True) + 1))
    best = np.argmax(scores, axis=1)
    best[profile.sum(axis=1) == 0] = NO_CHORD
    return best


def chord_recognizability(
    notes: np.ndarray, intended_roots: np.ndarray, beat_16th: int
) -> float:
    """Share of beats whose recognized triad root (`recognize_chords`) is the intended root.

    `intended_roots` per beat from step 0 (`roots_per_beat`); NO_CHORD beats are not judged.
    NaN when no beat has an intended chord.
    """
    intended = np.asarray(intended_roots, dtype=np.int64)
    judged = intended != NO_CHORD
    if not judged.any():
        return math.nan
    found = recognize_chords(notes, intended.shape[0] * beat_16th, beat_16th)
    roots = np.where(found == NO_CHORD, NO_CHORD, TEMPLATE_ROOTS[found])
    return float((roots[judged] == intended[judged]).mean())


def accompaniment_metrics(
    notes: np.ndarray,
    melody_pitch: np.ndarray,
    chord_pcs: np.ndarray,
    intended_roots: np.ndarray,
    phrase_bars: Sequence[tuple[int, int]],
    bar_16th: int,
    beat_16th: int = 4,
    level_cutpoints: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
) -> AccompanimentMetrics:
    """Every accompaniment measure of one piece.

    All grids start at step 0, a bar line: `melody_pitch` per 16th (REST where silent),
    `chord_pcs` the target chord per 16th (length × 12), `intended_roots` per beat;
    `phrase_bars` as (start_bar, end_bar) from that bar line. `level_cutpoints` gives per phrase
    the (RD, VN) cut points to level it with, for a texture library with its own scale (POP909
    donors: quintiles per phrase length); default: the descriptors' constants for every phrase.
    """
    melody = np.asarray(melody_pitch)
    chords = np.asarray(chord_pcs, dtype=bool)
    length = melody.shape[0]
    if chords.shape != (length, PITCH_CLASSES):
        raise ValueError(
            f"grids disagree: melody {melody.shape}, chord pcs {chords.shape} "
            f"(expected {length} × {PITCH_CLASSES})"
        )
    rows = _rows(notes)
    roll = onset_roll(rows, length)
    densities: list[float] = []
    voices: list[float] = []
    for start, end in phrase_bars:
        phrase = roll[start * bar_16th : end * bar_16th]
        densities.append(rhythmic_density(phrase))
        voices.append(voice_number(phrase, beat_16th))
    cuts = level_cutpoints or [(DENSITY_CUTPOINTS, POLYPHONY_CUTPOINTS)] * len(phrase_bars)
    if len(cuts) != len(phrase_bars):
        raise ValueError(f"{len(cuts)} level cut points for {len(phrase_bars)} phrases")
    groove = groove_consistency(roll, bar_16th, phrase_bars)
    return AccompanimentMetrics(
        chord_tone_ratio=chord_tone_ratio(rows, chords),
        melody_clash_rate=melody_clash_rate(rows, melody),
        above_melody_share=above_melody_share(rows, melody),
        rhythmic_density=float(np.mean(densities)) if densities else math.nan,
        voice_number=float(np.mean(voices)) if voices else math.nan,
        phrase_densities=tuple(densities),
        phrase_voice_numbers=tuple(voices),
        density_levels=tuple(level(d, c[0]) for d, c in zip(densities, cuts, strict=True)),
        polyphony_levels=tuple(level(v, c[1]) for v, c in zip(voices, cuts, strict=True)),
        groove_within=groove.within,
        groove_across=groove.across,
        groove_ratio=groove.ratio,
        chord_recognizability=chord_recognizability(rows, intended_roots, beat_16th),
    )
