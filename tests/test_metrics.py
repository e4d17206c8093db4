"""Hand-computed checks of the harmonization metrics (engine.metrics.harmony,
docs/evaluation.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.metrics.harmony import (
    chord_pcs_grid,
    harmony_metrics,
    tonal_centroid,
    tonal_distance,
)
from engine.types import Note

C, D, E, F, F_SHARP, G, A = 60, 62, 64, 65, 66, 67, 69
C_MAJOR = (0, 4, 7)
G_MAJOR = (7, 11, 2)
F_MAJOR = (5, 9, 0)
SQRT3 = math.sqrt(3)


def melody(*notes: tuple[int | None, int]) -> tuple[np.ndarray, np.ndarray]:
    """Melody grid from (pitch or None for a rest, duration in 16ths) pairs."""
    pitch: list[int] = []
    onset: list[bool] = []
    for p, duration in notes:
        pitch += [-1 if p is None else p] * duration
        onset += [p is not None] + [False] * (duration - 1)
    return np.array(pitch, dtype=np.int16), np.array(onset, dtype=bool)


def chords(*spans: tuple[tuple[int, ...], int]) -> np.ndarray:
    """Chord grid from (pitch classes, duration in 16ths) pairs; () is silence."""
    rows = []
    for pcs, duration in spans:
        row = np.zeros(12, dtype=bool)
        row[list(pcs)] = True
        rows += [row] * duration
    return np.array(rows)


def pc_set(*pcs: int) -> np.ndarray:
    row = np.zeros(12, dtype=bool)
    row[list(pcs)] = True
    return row


# Hand-derived centroids: Φ columns for C (l=0) = (0, 1, 0, 1, 0, 1/2); the C-major centroid is
# the mean of the columns for 0, 4 and 7.
C_CENTROID = np.array([0, 1, 0, 1, 0, 0.5])
C_MAJOR_CENTROID = np.array([(SQRT3 + 1) / 2, (SQRT3 + 1) / 2, 1, 2, SQRT3 / 2, 0]) / 3
# |ζ(C) − ζ(C major)|² = (52 − 8√3)/36; |ζ(C) − ζ(G)|² = 19/4 − √3;
# |ζ(C major) − ζ(G major)|² = 13.25/9 = 53/36.
DIST_C_TO_C_MAJOR = math.sqrt(52 - 8 * SQRT3) / 6
DIST_C_TO_G = math.sqrt(19 / 4 - SQRT3)
DIST_C_MAJOR_TO_G_MAJOR = math.sqrt(53) / 6


def test_centroid_of_single_pitch_class_is_its_basis_column() -> None:
    assert np.allclose(tonal_centroid(pc_set(0)), C_CENTROID)


def test_centroid_of_c_major() -> None:
    assert np.allclose(tonal_centroid(pc_set(*C_MAJOR)), C_MAJOR_CENTROID)


def test_tonal_distances_by_hand() -> None:
    assert tonal_distance(pc_set(0), pc_set(*C_MAJOR)) == pytest.approx(DIST_C_TO_C_MAJOR)
    assert tonal_distance(pc_set(0), pc_set(7)) == pytest.approx(DIST_C_TO_G)
    assert tonal_distance(pc_set(*C_MAJOR), pc_set(*G_MAJOR)) == pytest.approx(
        DIST_C_MAJOR_TO_G_MAJOR
    )


def test_centroid_of_empty_set_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        tonal_centroid(np.zeros(12, dtype=bool))


def test_pcs_c_major_under_c_e_g_f_sharp() -> None:
    # C: unison +1, (0-4)%12=8 +1, (0-7)%12=5 → 0  → 2/3
    # E: 4, 0, 9 → +1 each → 1;  G: 7, 3, 0 → 1;  F#: 6, 2, 11 → −1 each → −1
    pitch, onset = melody((C, 4), (E, 4), (G, 4), (F_SHARP, 4))
    result = harmony_metrics(pitch, onset, chords((C_MAJOR, 16)))
    assert result.pcs == pytest.approx((2 / 3 + 1 + 1 - 1) / 4)


def test_pcs_weights_by_duration_and_skips_notes_without_chord() -> None:
    # E (+1) for 12 steps, F# (−1) for 4 steps, then G over silence: skipped.
    pitch, onset = melody((E, 12), (F_SHARP, 4), (G, 4))
    result = harmony_metrics(pitch, onset, chords((C_MAJOR, 16), ((), 4)))
    assert result.pcs == pytest.approx((12 * 1 - 4 * 1) / 16)


def test_pcs_uses_the_chord_at_the_onset() -> None:
    # The note starts over C major (E: +1) and is held into F major: only the onset counts.
    pitch, onset = melody((E, 8))
    result = harmony_metrics(pitch, onset, chords((C_MAJOR, 4), (F_MAJOR, 4)))
    assert result.pcs == pytest.approx(1.0)


def test_ctnctr_counts_a_passing_tone() -> None:
    # C (chord tone), D (non-chord tone resolving a whole tone up to E), E (chord tone):
    # (n_c + n_p) / (n_c + n_n) = (2 + 1) / (2 + 1).
    pitch, onset = melody((C, 4), (D, 4), (E, 4))
    assert harmony_metrics(pitch, onset, chords((C_MAJOR, 12))).ctnctr == pytest.approx(1.0)


def test_ctnctr_leap_after_non_chord_tone_is_not_resolved() -> None:
    # D leaps a 4th to G: n_c = 2, n_n = 1, n_p = 0.
    pitch, onset = melody((C, 4), (D, 4), (G, 4))
    assert harmony_metrics(pitch, onset, chords((C_MAJOR, 12))).ctnctr == pytest.approx(2 / 3)


def test_ctnctr_next_different_note_skips_repeats_and_rests() -> None:
    # D, D again, a rest, then E: the next *different* note is E, a chord tone → n_p = 1.
    pitch, onset = melody((C, 4), (D, 2), (D, 2), (None, 2), (E, 2))
    assert harmony_metrics(pitch, onset, chords((C_MAJOR, 12))).ctnctr == pytest.approx(
        (2 + 2) / (2 + 2)
    )


def test_ctnctr_resolution_is_tested_against_the_next_notes_chord() -> None:
    # F over C major moves to E, but E sounds over G major where it is no chord tone: n_p = 0.
    pitch, onset = melody((F, 4), (E, 4))
    result = harmony_metrics(pitch, onset, chords((C_MAJOR, 4), (G_MAJOR, 4)))
    assert result.ctnctr == pytest.approx(0.0)


def test_mctd_single_note_against_c_major() -> None:
    pitch, onset = melody((C, 4))
    result = harmony_metrics(pitch, onset, chords((C_MAJOR, 4)))
    assert result.mctd == pytest.approx(DIST_C_TO_C_MAJOR)


def test_mctd_weights_by_duration() -> None:
    # Chord = the single pitch class C: C is at distance 0, G at DIST_C_TO_G for 12 of 16 steps.
    pitch, onset = melody((C, 4), (G + 12, 12))
    result = harmony_metrics(pitch, onset, chords(((0,), 16)))
    assert result.mctd == pytest.approx(0.75 * DIST_C_TO_G)


def test_che_and_cc_of_two_chord_alternation() -> None:
    pitch, onset = melody((C, 16))
    result = harmony_metrics(
        pitch, onset, chords((C_MAJOR, 4), (G_MAJOR, 4), (C_MAJOR, 4), (G_MAJOR, 4))
    )
    assert result.che == pytest.approx(math.log(2))
    assert result.cc == 2


def test_che_samples_each_beat_and_ignores_silence() -> None:
    # Beats: C, C, G, F, silence → shares 1/2, 1/4, 1/4; CHE = 1.5·ln 2, CC = 3.
    pitch, onset = melody((C, 20))
    grid = chords((C_MAJOR, 8), (G_MAJOR, 4), (F_MAJOR, 4), ((), 4))
    result = harmony_metrics(pitch, onset, grid, beat_16th=4)
    assert result.che == pytest.approx(1.5 * math.log(2))
    assert result.cc == 3


def test_che_sees_only_beat_starts() -> None:
    # A G major 8th inside each beat never lands on a sampled step in 6/8 (beat = 6 16ths).
    pitch, onset = melody((C, 12))
    beat = ((C_MAJOR, 2), (G_MAJOR, 2), (C_MAJOR, 2))
    grid = chords(*beat, *beat)
    result = harmony_metrics(pitch, onset, grid, beat_16th=6)
    assert (result.che, result.cc) == (0.0, 1)


def test_ctd_between_c_and_g_major() -> None:
    pitch, onset = melody((C, 12))
    # C → (same C after a gap: no change) → G → C: two changes, each of the same distance.
    grid = chords((C_MAJOR, 2), ((), 2), (C_MAJOR, 2), (G_MAJOR, 4), (C_MAJOR, 2))
    assert harmony_metrics(pitch, onset, grid).ctd == pytest.approx(DIST_C_MAJOR_TO_G_MAJOR)


def test_nothing_to_measure_gives_nan() -> None:
    pitch, onset = melody((C, 8))
    result = harmony_metrics(pitch, onset, chords(((), 8)))
    assert math.isnan(result.pcs) and math.isnan(result.ctnctr) and math.isnan(result.mctd)
    assert math.isnan(result.ctd)
    assert (result.che, result.cc) == (0.0, 0)


def test_mismatched_grids_are_refused() -> None:
    pitch, onset = melody((C, 8))
    with pytest.raises(ValueError, match="grids disagree"):
        harmony_metrics(pitch, onset, chords((C_MAJOR, 4)))


def test_chord_pcs_grid_quantises_like_the_melody_grid() -> None:
    # 120 ticks per 16th: C major for a beat, then G major from step 4, clipped at length 6.
    notes = [Note(48, 0, 480), Note(52, 0, 480), Note(55, 0, 480), Note(55, 480, 480),
             Note(59, 480, 480), Note(62, 480, 480), Note(60, 5000, 120)]
    grid = chord_pcs_grid(notes, 120.0, 6)
    assert grid.shape == (6, 12)
    assert all(set(np.flatnonzero(grid[step])) == set(C_MAJOR) for step in range(4))
    assert all(set(np.flatnonzero(grid[step])) == set(G_MAJOR) for step in range(4, 6))
