"""Micro score (AccoMontage2 §3.2.1) against hand-computed values."""

import numpy as np
import pytest

from engine.harmonizer.micro import (
    CONSONANCE_BLEND,
    NO_CHORD_ROW,
    NO_CHORD_SCORE,
    ROOT_NO_CHORD_ROW,
    chord_row,
    chord_table,
    consonance_row,
    degree_table,
    micro_scores,
    root_table,
    slot_scores,
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


def test_consonance_row_by_hand():
    # C major triad: melody C → intervals 0, 8 (C-E), 5 (C-G) → (1 + 1 + 0)/3
    row = consonance_row(0, "maj")
    assert row[0] == pytest.approx(((1 + 1 + 0) / 3 + 1) / 2)
    assert row[4] == pytest.approx(1.0)  # E: 4, 0, 9 all consonant
    assert row[5] == pytest.approx(((0 - 1 - 1) / 3 + 1) / 2)  # F: 5, 1, 10
    assert row[6] == pytest.approx(0.0)  # F#: 6, 2, 11


def test_chord_rows_see_the_quality_only_in_the_consonance_rule():
    paper = chord_table("major", rule="paper")
    ours = chord_table("major", rule="consonance")
    d_major, d_minor = chord_row(2, "7"), chord_row(2, "min7")
    assert chord_row(-1, "maj") == NO_CHORD_ROW
    assert np.array_equal(paper[d_major], paper[d_minor])  # the paper sees roots only
    assert np.array_equal(paper[d_major], root_table("major")[2])
    # F# over D major is its third, over D minor a clash
    assert ours[d_major, 6] > ours[d_minor, 6]
    expected = (1 - CONSONANCE_BLEND) * root_table("major")[2, 6] + CONSONANCE_BLEND * 1.0
    assert ours[d_major, 6] == pytest.approx(expected)
