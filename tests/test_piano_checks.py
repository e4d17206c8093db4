"""Ear-level piano checks (engine.piano_checks) on small hand-made piano parts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import melody_grids

from engine.piano_checks import piano_checks, stacked_note_ons

BEAT = 4


grids = melody_grids


def chords(spans: list[tuple[int, tuple[int, ...], int]], length: int) -> tuple[np.ndarray, ...]:
    """(root, tones, length in 16ths) laid end to end → tones per 16th and roots per 16th."""
    tones = np.zeros((length, 12), dtype=bool)
    roots = np.full(length, -1)
    at = 0
    for root, pcs, dur in spans:
        tones[at : at + dur, list(pcs)] = True
        roots[at : at + dur] = root
        at += dur
    return tones, roots


def test_stacked_note_ons_counts_a_key_struck_while_it_sounds() -> None:
    rows = np.array([[0, 60, 8, 80], [4, 60, 4, 80], [8, 60, 4, 80], [0, 64, 4, 80]])
    assert stacked_note_ons(rows) == 1  # the C at 4 (the C at 8 starts as the first ends)


def test_velocity_gap_loud_share_and_thirdless_chords() -> None:
    length = 32
    pitch, onset = grids([(76, 0, 16), (79, 16, 16)], length)
    tones, roots = chords([(0, (0, 4, 7), 16), (7, (7, 11, 2), 16)], length)
    # C major: the piano plays C and G only, but the melody sings E → not thirdless;
    # G major: the piano plays G and D, the melody G → thirdless (no B anywhere)
    rows = np.array([[0, 48, 16, 70], [0, 55, 16, 70], [16, 43, 16, 112], [16, 50, 16, 60]])
    checks = piano_checks(rows, pitch, onset, np.array([90, 94]), tones, roots, BEAT)
    assert (checks.chords_judged, checks.thirdless) == (2, 1)
    assert checks.velocity_gap == pytest.approx(92 - 78)
    assert checks.loud == 1 and checks.loud_share == pytest.approx(0.25)


def test_parallel_octaves_between_the_melody_and_the_bass() -> None:
    length = 16
    pitch, onset = grids([(72, 0, 4), (74, 4, 4), (76, 8, 4), (72, 12, 4)], length)
    tones, roots = chords([(0, (0, 4, 7), 16)], length)
    # bass C–D (octaves with melody C–D: parallel), D–E (parallel), E–A (contrary): 3 moves
    rows = np.array([[0, 48, 4, 60], [4, 50, 4, 60], [8, 52, 4, 60], [12, 45, 4, 60]])
    checks = piano_checks(rows, pitch, onset, np.array([90] * 4), tones, roots, BEAT)
    assert (checks.bass_moves, checks.parallel_octaves) == (3, 2)
    assert checks.parallel_octaves_per_100 == pytest.approx(200 / 3)


def test_ending_is_held_only_at_the_melodys_last_note() -> None:
    length = 32
    pitch, onset = grids([(72, 0, 8), (72, 16, 16)], length)
    tones, roots = chords([(0, (0, 4, 7), 32)], length)
    held = np.array([[0, 48, 8, 60], [16, 48, 16, 60], [16, 52, 16, 60]])
    figure = np.array([[0, 48, 8, 60], [16, 48, 2, 60], [28, 55, 2, 60]])
    velocities = np.array([90, 90])
    assert piano_checks(held, pitch, onset, velocities, tones, roots, BEAT).ending_held == 1.0
    assert piano_checks(figure, pitch, onset, velocities, tones, roots, BEAT).ending_held == 0.0


def test_an_empty_piano_part_has_nothing_to_judge() -> None:
    pitch, onset = grids([(72, 0, 16)], 16)
    tones, roots = chords([(0, (0, 4, 7), 16)], 16)
    checks = piano_checks(np.zeros((0, 4)), pitch, onset, np.array([90]), tones, roots, BEAT)
    assert checks.note_ons == 0 and math.isnan(checks.stacked_share)
    assert math.isnan(checks.ending_held) and checks.bass_moves == 0


def test_bass_on_root_at_each_new_chord() -> None:
    length = 32
    pitch, onset = grids([(72, 0, 32)], length)
    tones, roots = chords([(0, (0, 4, 7), 16), (5, (5, 9, 0), 16)], length)
    # C bar: bass C; F bar: the figure starts on C (F's fifth) → not on the root
    rows = np.array([[0, 48, 8, 60], [8, 43, 8, 60], [16, 48, 8, 60], [24, 41, 8, 60]])
    checks = piano_checks(rows, pitch, onset, np.array([90]), tones, roots, BEAT)
    assert (checks.chord_changes, checks.bass_on_root) == (2, 1)
