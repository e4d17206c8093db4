"""Objective harmonization metrics on the 16th-note grid (docs/evaluation.md).

Owns the chord-track grid and the five melody/chord measures of Yeh et al. 2021 ("Automatic
melody harmonization with triad chords: a comparative study", JNMR 50(1), §6.1): PCS, CTnCTR,
MCTD, CHE/CC and CTD, with the tonal centroid of Harte, Sandler & Gasser 2006. Pure numpy.

Choices the definitions leave open, decided here once:
- A melody note is a run of grid steps that starts at an onset and lasts until the next onset
  or rest; its duration is that run's length in 16ths.
- The chord of a melody note is the set of pitch classes sounding at its onset step. A note with
  no chord there is skipped by PCS, MCTD and CTnCTR (it has nothing to be consonant with); it may
  still be the "next note" a non-chord tone resolves to, but then it is not a chord tone.
- PCS: a note's score is the mean over its chord's pitch classes, and notes are averaged weighted
  by duration, so a 7th chord does not weigh a note more than a triad would.
- CTnCTR: the "next different melody note" is the next note (rests skipped) whose pitch differs;
  it is tested against the chord at its own onset, and "at most 2 semitones" is in MIDI pitch.
- CHE/CC: the chord sounding at each beat's first step; empty steps are left out.
- CTD: the chord sequence on the 16th grid with empty steps removed and repeats merged, so every
  chord change counts once however short it is.
A metric with nothing to measure (no note under a chord, fewer than two different chords) is NaN
so that averaging over pieces can leave it out rather than count a fake zero; CHE and CC of an
empty chord track are 0 (no diversity at all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.grid import REST, note_span_16th
from engine.types import Note

PITCH_CLASSES = 12

# Harte, Sandler & Gasser 2006, eq. 1: rows = circle of fifths, minor thirds, major thirds, with
# radii 1, 1, 0.5; columns = pitch classes 0..11.
_ANGLES = np.arange(PITCH_CLASSES, dtype=float)
TONAL_CENTROID_BASIS: np.ndarray = np.stack(
    [
        np.sin(_ANGLES * 7 * np.pi / 6),
        np.cos(_ANGLES * 7 * np.pi / 6),
        np.sin(_ANGLES * 3 * np.pi / 2),
        np.cos(_ANGLES * 3 * np.pi / 2),
        0.5 * np.sin(_ANGLES * 2 * np.pi / 3),
        0.5 * np.cos(_ANGLES * 2 * np.pi / 3),
    ]
)

# PCS interval scores for (melody - chord) mod 12 (evaluation.md): unisons/octaves, 3rds, 5ths
# and 6ths consonant, the 4th neutral, everything else dissonant.
_CONSONANCE = np.full(PITCH_CLASSES, -1.0)
_CONSONANCE[[0, 3, 4, 7, 8, 9]] = 1.0
_CONSONANCE[5] = 0.0

_CHORD_TONE_STEP_LIMIT = 2  # CTnCTR: a non-chord tone resolving by at most a whole tone


@dataclass(frozen=True)
class HarmonyMetrics:
    """The five harmonization measures of one piece (↑ better: pcs, ctnctr; ↓: mctd, ctd)."""

    pcs: float
    ctnctr: float
    mctd: float
    che: float
    cc: int
    ctd: float


@dataclass(frozen=True)
class MelodyNote:
    start_16th: int
    duration_16th: int
    pitch: int


def chord_pcs_grid(notes: Sequence[Note], ticks_per_16th: float, length_16th: int) -> np.ndarray:
    """Pitch classes sounding per 16th (length × 12 bool), quantised like the melody grid.

    Uses the melody grid's rounding so that a chord and a melody note written at the same tick
    land on the same step.
    """
    grid = np.zeros((length_16th, PITCH_CLASSES), dtype=bool)
    for note in notes:
        start, end = note_span_16th(note, ticks_per_16th)
        if start < length_16th:
            grid[max(start, 0) : min(end, length_16th), note.pitch % PITCH_CLASSES] = True
    return grid


def tonal_centroid(pcs: np.ndarray) -> np.ndarray:
    """ζ = Φc / ‖c‖₁ for a non-empty 12-element pitch-class set (Harte et al. 2006, eq. 2)."""
    chroma = np.asarray(pcs, dtype=float)
    total = chroma.sum()
    if total <= 0:
        raise ValueError("the tonal centroid of an empty pitch-class set is undefined")
    centroid: np.ndarray = TONAL_CENTROID_BASIS @ chroma / total
    return centroid


def tonal_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between the tonal centroids of two non-empty pitch-class sets."""
    return float(np.linalg.norm(tonal_centroid(a) - tonal_centroid(b)))


def harmony_metrics(
    melody_pitch: np.ndarray,
    melody_onset: np.ndarray,
    chord_pcs: np.ndarray,
    beat_16th: int = 4,
) -> HarmonyMetrics:
    """PCS, CTnCTR, MCTD, CHE, CC and CTD of a melody grid against a chord grid.

    `melody_pitch`/`melody_onset` are as `engine.grid.melody_grid` returns them; `chord_pcs` is
    `chord_pcs_grid` of the chord track over the same steps. Restrict both to the span you want
    judged (steps outside it set to rest / no pitch classes) before calling.
    """
    pitch = np.asarray(melody_pitch)
    onset = np.asarray(melody_onset, dtype=bool)
    chords = np.asarray(chord_pcs, dtype=bool)
    if not (pitch.shape == onset.shape and chords.shape == (pitch.shape[0], PITCH_CLASSES)):
        raise ValueError(
            f"grids disagree: melody pitch {pitch.shape}, onset {onset.shape}, "
            f"chord pcs {chords.shape} (expected length × {PITCH_CLASSES})"
        )
    if beat_16th < 1:
        raise ValueError(f"beat_16th must be at least 1, got {beat_16th}")
    notes = melody_notes(pitch, onset)
    che, cc = _chord_histogram(chords, beat_16th)
    return HarmonyMetrics(
        pcs=_pitch_consonance(notes, chords),
        ctnctr=_chord_tone_ratio(notes, chords),
        mctd=_melody_chord_distance(notes, chords),
        che=che,
        cc=cc,
        ctd=_chord_tonal_distance(chords),
    )


def melody_notes(pitch: np.ndarray, onset: np.ndarray) -> list[MelodyNote]:
    """The notes of a melody grid: each onset starts one, the next onset or a rest ends it."""
    notes = []
    length = pitch.shape[0]
    for start in np.flatnonzero(onset & (pitch != REST)):
        end = start + 1
        while end < length and not onset[end] and pitch[end] == pitch[start]:
            end += 1
        notes.append(MelodyNote(int(start), int(end - start), int(pitch[start])))
    return notes


def _pitch_consonance(notes: list[MelodyNote], chords: np.ndarray) -> float:
    """PCS: duration-weighted mean over notes of the mean interval score against the chord."""
    total = weight = 0.0
    for note in notes:
        chord = np.flatnonzero(chords[note.start_16th])
        if chord.size == 0:
            continue
        intervals = (note.pitch - chord) % PITCH_CLASSES
        total += note.duration_16th * float(_CONSONANCE[intervals].mean())
        weight += note.duration_16th
    return total / weight if weight else math.nan


def _chord_tone_ratio(notes: list[MelodyNote], chords: np.ndarray) -> float:
    """CTnCTR = (n_c + n_p) / (n_c + n_n), Yeh et al. 2021 §6.1."""

    def is_chord_tone(note: MelodyNote) -> bool:
        return bool(chords[note.start_16th, note.pitch % PITCH_CLASSES])

    n_c = n_n = n_p = 0
    for index, note in enumerate(notes):
        if not chords[note.start_16th].any():
            continue
        if is_chord_tone(note):
            n_c += 1
            continue
        n_n += 1
        following = next((n for n in notes[index + 1 :] if n.pitch != note.pitch), None)
        if (
            following is not None
            and abs(following.pitch - note.pitch) <= _CHORD_TONE_STEP_LIMIT
            and is_chord_tone(following)
        ):
            n_p += 1
    return (n_c + n_p) / (n_c + n_n) if n_c + n_n else math.nan


def _melody_chord_distance(notes: list[MelodyNote], chords: np.ndarray) -> float:
    """MCTD: duration-weighted tonal distance between each note's pitch class and its chord."""
    total = weight = 0.0
    for note in notes:
        chord = chords[note.start_16th]
        if not chord.any():
            continue
        melody_pc = np.zeros(PITCH_CLASSES, dtype=bool)
        melody_pc[note.pitch % PITCH_CLASSES] = True
        total += note.duration_16th * tonal_distance(melody_pc, chord)
        weight += note.duration_16th
    return total / weight if weight else math.nan


def _chord_histogram(chords: np.ndarray, beat_16th: int) -> tuple[float, int]:
    """CHE (natural log) and CC over the chords sounding at each beat's first step."""
    sampled = chords[::beat_16th]
    sampled = sampled[sampled.any(axis=1)]
    if sampled.shape[0] == 0:
        return 0.0, 0
    _, counts = np.unique(sampled, axis=0, return_counts=True)
    share = counts / counts.sum()
    return float(-(share * np.log(share)).sum()), int(counts.size)


def _chord_tonal_distance(chords: np.ndarray) -> float:
    """CTD: mean tonal distance over changes between consecutive different non-empty chords."""
    sounding = chords[chords.any(axis=1)]
    if sounding.shape[0] < 2:
        return math.nan
    changes = np.flatnonzero((sounding[1:] != sounding[:-1]).any(axis=1))
    if changes.size == 0:
        return math.nan
    return float(np.mean([tonal_distance(sounding[i], sounding[i + 1]) for i in changes]))
