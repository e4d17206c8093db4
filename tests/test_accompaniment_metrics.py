"""Hand-computed checks of the accompaniment metrics (engine.metrics.accompaniment,
docs/evaluation.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.arranger.descriptors import DENSITY_CUTPOINTS, POLYPHONY_CUTPOINTS, level
from engine.metrics.accompaniment import (
    NO_CHORD,
    AccompanimentMetrics,
    above_melody_share,
    accompaniment_metrics,
    chord_recognizability,
    chord_target_grid,
    chord_tone_ratio,
    groove_consistency,
    melody_clash_rate,
    note_rows,
    recognize_chords,
    roots_per_beat,
)
from engine.types import Chord, ChordEvent, Note

C_MAJOR = (0, 4, 7)
A_MINOR_INDEX = 12 + 9  # templates: majors C..B, then minors C..B


def acc(*notes: tuple[int, int, int]) -> np.ndarray:
    """Accompaniment rows from (onset_16th, pitch, duration_16th) triples, velocity 80."""
    return np.array([(onset, pitch, duration, 80) for onset, pitch, duration in notes])


def melody(*notes: tuple[int | None, int]) -> np.ndarray:
    """Melody pitch per 16th from (pitch or None for a rest, duration) pairs."""
    pitch: list[int] = []
    for p, duration in notes:
        pitch += [-1 if p is None else p] * duration
    return np.array(pitch, dtype=np.int16)


def chords(*spans: tuple[tuple[int, ...], int]) -> np.ndarray:
    rows = []
    for pcs, duration in spans:
        row = np.zeros(12, dtype=bool)
        row[list(pcs)] = True
        rows += [row] * duration
    return np.array(rows)


# ------------------------------------------------------------------------- chord-tone ratio


def test_chord_tone_ratio_weighs_by_duration_and_skips_steps_without_chord() -> None:
    grid = chords((C_MAJOR, 8), ((), 4))
    # C 4 steps (chord tone), D 2 (not), E 2 (chord tone); the G after the chord ends is not
    # judged, and the F running past the grid's end only counts its 2 steps inside
    notes = acc((0, 48, 4), (4, 50, 2), (6, 52, 2), (8, 55, 4), (6, 53, 10))
    # judged steps: 4 + 2 + 2 + 2 (F at steps 6, 7) = 10, chord tones 4 + 2 = 6
    assert chord_tone_ratio(notes, grid) == pytest.approx(6 / 10)


def test_chord_tone_ratio_is_nan_without_chord_or_notes() -> None:
    assert math.isnan(chord_tone_ratio(acc((0, 60, 4)), chords(((), 4))))
    assert math.isnan(chord_tone_ratio(np.zeros((0, 4), dtype=int), chords((C_MAJOR, 4))))


# ------------------------------------------------------------------------ melody clashes


def test_melody_clash_rate_counts_interval_classes_1_6_11_under_the_melody() -> None:
    tune = melody((72, 8), (None, 4))
    notes = acc(
        (0, 59, 4),  # B3 under C5: (59 − 72) mod 12 = 11, clashes 4 steps
        (0, 52, 8),  # E3: interval 8, fine for 8 steps
        (4, 66, 2),  # F#4: tritone, clashes 2 steps
        (8, 61, 4),  # C#4 while the melody rests: not judged
    )
    assert melody_clash_rate(notes, tune) == pytest.approx((4 + 2) / (4 + 8 + 2))


def test_melody_clash_rate_sees_a_minor_second_above_the_melody() -> None:
    assert melody_clash_rate(acc((0, 61, 4)), melody((60, 4))) == 1.0


def test_melody_clash_rate_is_nan_when_nothing_sounds_with_the_melody() -> None:
    assert math.isnan(melody_clash_rate(acc((4, 61, 4)), melody((60, 4), (None, 4))))


# --------------------------------------------------------------------------- above melody


def test_above_melody_share_counts_notes_starting_under_a_melody_note() -> None:
    tune = melody((60, 4), (None, 4), (67, 4))
    notes = acc(
        (0, 64, 8),  # above C4
        (0, 55, 4),  # below
        (2, 60, 2),  # equal pitch: not above
        (4, 70, 4),  # starts in a melody rest: not counted
        (8, 65, 4),  # below G4
    )
    assert above_melody_share(notes, tune) == pytest.approx(1 / 4)


def test_above_melody_share_is_nan_without_a_counted_note() -> None:
    assert math.isnan(above_melody_share(acc((4, 70, 4)), melody((60, 4), (None, 4))))


# ---------------------------------------------------------------------------- groove


def _onsets(*bars: str) -> np.ndarray:
    return np.array([c == "x" for bar in bars for c in bar])


def test_groove_consistency_within_and_across_phrases() -> None:
    grid = _onsets("x.x.", "x.x.", "xxxx", "x...")
    result = groove_consistency(grid, 4, [(0, 2), (2, 4)])
    # within: bars 0/1 Jaccard 2/2 = 1, bars 2/3 1/4; across: every pair 0.5
    assert result.within == pytest.approx((1 + 0.25) / 2)
    assert result.across == pytest.approx(0.5)
    assert result.ratio == pytest.approx(1.25)


def test_groove_consistency_accepts_a_pitch_roll_and_skips_silent_pairs() -> None:
    grid = _onsets("x...", "....", "....", "x...")
    roll = np.zeros((16, 128), dtype=bool)
    roll[grid, 60] = True
    roll[0, 64] = True  # a second onset on the same step is still one onset position
    result = groove_consistency(roll, 4, [(0, 2), (2, 4)])
    # within: (0, 1) → 0, (2, 3) → 0; across: (0, 2) 0, (0, 3) 1, (1, 2) silent: skipped, (1, 3) 0
    assert result.within == 0.0
    assert result.across == pytest.approx(1 / 3)
    assert result.ratio == 0.0


def test_groove_consistency_with_one_phrase_has_no_across_value() -> None:
    result = groove_consistency(_onsets("x...", "x..."), 4, [(0, 2)])
    assert result.within == 1.0
    assert math.isnan(result.across) and math.isnan(result.ratio)


# --------------------------------------------------------------------- chord recognition


def test_recognize_chords_picks_triads_by_duration_profile() -> None:
    notes = acc(
        (0, 48, 1), (1, 52, 1), (2, 55, 2),  # beat 0: C E G → C major
        (4, 57, 4), (4, 60, 1), (5, 64, 3),  # beat 1: A×4 C×1 E×3 → A minor (8 vs C major 4)
        (8, 48, 2), (10, 52, 2),  # beat 2: C E: C major and A minor tie, C sounds → C major
    )  # beat 3 silent
    assert recognize_chords(notes, 16, 4).tolist() == [0, A_MINOR_INDEX, 0, NO_CHORD]


def test_chord_recognizability_compares_roots_per_beat() -> None:
    notes = acc((0, 48, 1), (1, 52, 1), (2, 55, 2), (4, 57, 4), (4, 60, 1), (5, 64, 3),
                (8, 48, 2), (10, 52, 2))
    # recognized roots C, A, C, silent
    assert chord_recognizability(notes, np.array([0, 9, 9, 7]), 4) == pytest.approx(2 / 4)
    assert chord_recognizability(notes, np.array([0, 9, 9, NO_CHORD]), 4) == pytest.approx(2 / 3)
    assert math.isnan(chord_recognizability(notes, np.full(4, NO_CHORD), 4))


def test_roots_per_beat_and_target_grid_from_chord_events() -> None:
    events = [
        ChordEvent(Chord(0, "maj", 0), 0, 6),
        ChordEvent(Chord(7, "7", 11), 6, 6),  # G7/B
    ]
    assert roots_per_beat(events, 16, 4).tolist() == [0, 0, 7, NO_CHORD]  # at steps 0 4 8 12
    grid = chord_target_grid(events, 16)
    assert np.flatnonzero(grid[0]).tolist() == [0, 4, 7]
    assert np.flatnonzero(grid[6]).tolist() == [2, 5, 7, 11]
    assert not grid[12:].any()


def test_note_rows_quantise_and_shift() -> None:
    notes = [Note(60, 240, 120, 70), Note(64, 0, 10)]  # 120 ticks per 16th
    rows = note_rows(notes, 120.0, shift_16th=1)
    assert rows.tolist() == [[1, 60, 1, 70], [-1, 64, 1, 90]]


# ------------------------------------------------------------------------------ bundle


def test_accompaniment_metrics_bundle() -> None:
    bar = 16
    tune = melody((76, 8), (None, 8), (79, 16))
    grid = chords((C_MAJOR, 16), ((7, 11, 2), 16))
    roots = np.array([0, 0, 0, 0, 7, 7, 7, 7])
    block = ((48, 52, 55), (47, 50, 55))
    rows = []
    for b, pitches in enumerate(block):  # half-note block chords, a bass on beats 2 and 4
        for beat in (0, 8):
            rows += [(b * bar + beat, p, 8) for p in pitches]
        rows += [(b * bar + 4, pitches[0] - 12, 4), (b * bar + 12, pitches[0] - 12, 4)]
    notes = acc(*rows)
    result = accompaniment_metrics(notes, tune, grid, roots, [(0, 1), (1, 2)], bar, 4)
    assert isinstance(result, AccompanimentMetrics)
    assert result.chord_tone_ratio == 1.0
    assert result.melody_clash_rate == 0.0  # E/C/G against E5 and B/D/G against G5
    assert result.above_melody_share == 0.0
    assert result.chord_recognizability == 1.0
    # onsets on the 4 beats of each bar: RD 4/16; VN max(mean 2 on beats, 0 off-beat 8ths)
    assert result.rhythmic_density == pytest.approx(0.25)
    assert result.voice_number == pytest.approx(2.0)
    # levels with the arranger's own (provisional) cut points, whatever they are
    assert result.density_levels == (level(0.25, DENSITY_CUTPOINTS),) * 2
    assert result.polyphony_levels == (level(2.0, POLYPHONY_CUTPOINTS),) * 2
    assert math.isnan(result.groove_within)  # one bar per phrase: no pair within
    assert result.groove_across == 1.0
    assert result.phrase_densities == (0.25, 0.25) and result.phrase_voice_numbers == (2.0, 2.0)
    # a library with its own scale: RD 0.25 reaches no cut point of phrase 1, all 4 of phrase 2
    cuts = [((0.3, 0.4, 0.5, 0.6), (2.5, 3, 3.5, 4)), ((0.1, 0.15, 0.2, 0.25), (1, 1, 2, 2))]
    relevelled = accompaniment_metrics(notes, tune, grid, roots, [(0, 1), (1, 2)], bar, 4, cuts)
    assert relevelled.density_levels == (0, 4) and relevelled.polyphony_levels == (0, 4)
    with pytest.raises(ValueError, match="cut points"):
        accompaniment_metrics(notes, tune, grid, roots, [(0, 1), (1, 2)], bar, 4, cuts[:1])


def test_accompaniment_metrics_rejects_disagreeing_grids() -> None:
    with pytest.raises(ValueError, match="grids disagree"):
        accompaniment_metrics(acc((0, 60, 4)), melody((60, 8)), chords((C_MAJOR, 4)),
                              np.zeros(2, dtype=int), [(0, 1)], 8, 4)
