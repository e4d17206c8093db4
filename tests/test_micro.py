"""Micro score (AccoMontage2 §3.2.1) against hand-computed values."""

import numpy as np
import pytest

from engine.harmonizer.micro import (
    NO_CHORD_ROW,
    NO_CHORD_SCORE,
    ROOT_NO_CHORD_ROW,
    chord_row,
    chord_table,
    clash_table,
    degree_table,
    micro_scores,
    root_table,
    slot_scores,
    strong_beat_clashes,
)


def test_major_table_rows_follow_root_third_fifth():
    t = degree_table("major")
    assert (t[0, 0], t[0, 4], t[0, 7]) == (1.0, 0.75, 0.9)  # I: C E G
    assert (t[3, 5], t[3, 9], t[3, 0]) == (1.0, 0.75, 0.9)  # IV: F A C


def test_leading_tone_fix_moves_75_from_flat7_to_leading_tone():
    fixed, release = degree_table("major", True), degree_table("major", False)
    assert (fixed[4, 11], fixed[4, 10]) == (0.75, 0.15)
    assert (release[4, 11], release[4, 10]) == (0.15, 0.75)
    assert np.array_equal(np.delete(fixed, 4, axis=0), np.delete(release, 4, axis=0))


def test_minor_table_swaps_columns_but_row_v_keeps_flat7():
    major, minor = degree_table("major", False), degree_table("minor")
    assert minor[0, 3] == major[0, 4] == 0.75  # i: minor third is the chord tone
    assert minor[0, 4] == major[0, 3]
    assert minor[5, 8] == major[5, 9]  # VI row, 8↔9 swapped
    assert (minor[4, 10], minor[4, 11]) == (0.75, 0.15)
    assert (minor[4, 3], minor[4, 4]) == (major[4, 4], major[4, 3])


def test_chromatic_root_rotate_vs_truncate():
    rotate = root_table("major", chromatic="rotate")
    truncate = root_table("major", fix_leading_tone=False, chromatic="truncate")
    # bVII (Bb) as a major triad: Bb D F
    assert (rotate[10, 10], rotate[10, 2], rotate[10, 5]) == (1.0, 0.75, 0.9)
    # release: truncated down to vi (A)
    assert np.array_equal(truncate[10], degree_table("major", False)[5])
    assert np.all(rotate[ROOT_NO_CHORD_ROW] == NO_CHORD_SCORE)


def test_slot_scores_average_two_sixteenths_and_rests_score_half():
    table = root_table("major")
    slots = slot_scores(np.array([0, 4, -1, 0, 7]), table)  # odd length padded with a rest
    assert slots.shape == (3, 13)
    assert slots[0, 0] == pytest.approx((1.0 + 0.75) / 2)
    assert slots[1, 0] == pytest.approx((0.5 + 1.0) / 2)
    assert slots[2, 7] == pytest.approx((1.0 + 0.5) / 2)  # G over the V chord


def test_micro_scores_is_the_mean_over_slots():
    table = root_table("major")
    slots = slot_scores(np.array([0, 0, 5, 5]), table)
    rows = np.array([[0, 5], [0, 0]])
    got = micro_scores(slots, rows)
    assert got[0] == pytest.approx(1.0)  # C over I, F over IV
    assert got[1] == pytest.approx((1.0 + table[0, 5]) / 2)


def test_chord_rows_see_the_quality_only_in_our_rule():
    paper = chord_table("major", rule="paper")
    ours = chord_table("major", rule="quality")
    d_major, d_minor = chord_row(2, "7"), chord_row(2, "min7")
    assert chord_row(-1, "maj") == NO_CHORD_ROW
    assert np.array_equal(paper[d_major], paper[d_minor])  # the paper sees roots only
    assert np.array_equal(paper[d_major], root_table("major")[2])
    # F# over D major is its third (the row's third value), F its minor third's lower value
    row = root_table("major")[2]
    assert ours[d_major, 6] == pytest.approx(row[5]) and ours[d_major, 5] == pytest.approx(row[6])
    assert np.array_equal(ours[d_minor], row)  # the diatonic quality keeps the paper's row


def test_minor_dominant_fits_the_leading_tone_only_as_a_major_chord():
    table = chord_table("minor", rule="quality")
    major_v, minor_v, tonic = chord_row(7, "maj"), chord_row(7, "min"), chord_row(0, "min")
    assert table[major_v, 11] == pytest.approx(0.75)  # G♯ is E major's third in A minor
    assert table[minor_v, 11] == pytest.approx(0.15)
    assert table[tonic, 11] < 0.2  # never the tonic under the raised 7th


def test_sus_rows_give_the_third_away_to_the_suspended_tone():
    table = chord_table("major", rule="quality")
    row = root_table("major")[7]
    gsus4 = table[chord_row(7, "sus4")]
    assert gsus4[11] == pytest.approx(min(row[10], row[11]))  # B: the third a sus4 lacks
    assert gsus4[0] == pytest.approx(max(row[0], row[11]))  # C: its suspended 4th


def test_strong_beat_clashes_mark_a_long_beat_note_a_semitone_from_the_triad():
    clash = clash_table()
    assert clash[chord_row(2, "min"), 1]  # Dm under a C♯ (D minor's leading tone)
    assert not clash[chord_row(9, "maj"), 1]  # A major holds it
    # a C♯ held from beat 1 (slot 0), a short D on beat 2 (not counted), C♯ on the 8th after
    melody = np.array([1, 1, 1, 1, 2, -1, -1, -1, -1, -1, 1, 1, -1, -1, -1, -1])
    marks = strong_beat_clashes(melody, 4)
    assert marks.shape == (8, NO_CHORD_ROW + 1)
    assert marks[0, chord_row(2, "min")] == 1.0
    assert marks[2:].sum() == 0.0


