"""Ear-level harmony checks (engine.ear_checks) and the chord namer they use (engine.chord_names).

Small grids built in code, where a musician's answer is clear."""

from __future__ import annotations

import math

import pytest
from builders import melody_grids

from engine.chord_names import name_chord
from engine.ear_checks import NO_ROOT, ear_checks, read_chords
from engine.types import Note

TICKS = 120  # per 16th
BAR = 16


def mask(*pcs: int) -> int:
    return sum(1 << (pc % 12) for pc in set(pcs))


@pytest.mark.parametrize(
    ("pcs", "bass", "root", "quality"),
    [
        ((0, 4, 7), 0, 0, "maj"),
        ((0, 4, 7), 4, 0, "maj"),  # C/E is still C
        ((9, 0, 4), 9, 9, "min"),
        ((0, 4, 7, 9), 0, 0, "6"),  # C6 over C …
        ((0, 4, 7, 9), 9, 9, "min7"),  # … Am7 over A: the bass decides
        ((7, 11, 2, 5), 7, 7, "7"),
        ((2, 7, 9), 2, 2, "sus4"),  # Dsus4
        ((7, 9, 2), 7, 7, "sus2"),  # the same tones over G: Gsus2
        ((0, 4), 0, 0, "maj"),  # a bare third over its root
        ((5,), 5, 5, "maj"),  # a lone bass names itself
    ],
)
def test_name_chord(pcs: tuple[int, ...], bass: int, root: int, quality: str) -> None:
    assert name_chord(mask(*pcs), bass) == (root, quality)


def test_silence_has_no_name() -> None:
    assert name_chord(0, -1) == (-1, "")


def chord(pcs: tuple[int, ...], start_16th: int, length_16th: int) -> list[Note]:
    """A chord with its first pitch class as the bass, an octave under the rest."""
    return [Note(36 + pcs[0], start_16th * TICKS, length_16th * TICKS)] + [
        Note(48 + pc, start_16th * TICKS, length_16th * TICKS) for pc in pcs
    ]


melody = melody_grids


C, F, G, DM, AM = (0, 4, 7), (5, 9, 0), (7, 11, 2), (2, 5, 9), (9, 0, 4)


def test_read_chords_names_every_16th() -> None:
    reading = read_chords(chord(C, 0, 8) + chord(G, 8, 8), TICKS, 20)
    assert reading.root[:8].tolist() == [0] * 8
    assert reading.root[8:16].tolist() == [7] * 8
    assert reading.root[16:].tolist() == [NO_ROOT] * 4


def test_cadence_opening_and_root_accuracy() -> None:
    # two bars: human C | G C; ours C | G F → same opening, different final chord
    pitch, onset = melody([(72, 0, 8), (67, 8, 8), (71, 16, 8), (72, 24, 8)], 2 * BAR)
    human = read_chords(chord(C, 0, 16) + chord(G, 16, 8) + chord(C, 24, 8), TICKS, 2 * BAR)
    ours = read_chords(chord(C, 0, 16) + chord(G, 16, 8) + chord(F, 24, 8), TICKS, 2 * BAR)
    checks = ear_checks(pitch, onset, ours, human, 0, 2 * BAR, BAR, 4, [2 * BAR])
    assert checks.opening == 1.0
    assert checks.cadence == 0.0
    assert checks.root_slots == 16 and checks.root_hits == 12
    assert checks.root_accuracy == pytest.approx(0.75)
    assert ear_checks(pitch, onset, human, human, 0, 2 * BAR, BAR, 4).cadence == 1.0


def test_repeats_count_pairs_of_identical_bars() -> None:
    # bars 1 and 3 share their melody; ours harmonizes them differently, human alike
    figure = [(60, 0, 4), (64, 4, 4), (67, 8, 8)]
    notes = [(p, s + k * BAR, d) for k in (0, 2) for p, s, d in figure] + [(65, BAR, 16)]
    pitch, onset = melody(notes, 3 * BAR)
    human = read_chords(chord(C, 0, 16) + chord(F, 16, 16) + chord(C, 32, 16), TICKS, 3 * BAR)
    ours = read_chords(chord(C, 0, 16) + chord(F, 16, 16) + chord(AM, 32, 16), TICKS, 3 * BAR)
    mine = ear_checks(pitch, onset, ours, human, 0, 3 * BAR, BAR, 4)
    theirs = ear_checks(pitch, onset, human, human, 0, 3 * BAR, BAR, 4)
    assert (mine.repeat_pairs, mine.repeat_same) == (1, 0)
    assert (theirs.repeat_pairs, theirs.repeat_same) == (1, 1)


def test_strong_beat_dissonance_is_a_semitone_clash_on_a_beat() -> None:
    # D minor in D minor under a sung C♯ on the downbeat (the example), then A major
    pitch, onset = melody([(73, 0, 4), (73, 16, 4), (74, 20, 1)], 2 * BAR)
    dm = read_chords(chord(DM, 0, 16) + chord((9, 1, 4), 16, 16), TICKS, 2 * BAR)
    checks = ear_checks(pitch, onset, dm, dm, 0, 2 * BAR, BAR, 4)
    # the 16th-note D is too short to count; the C♯ under Dm clashes, under A it is the third
    assert (checks.strong_notes, checks.strong_dissonant) == (2, 1)


def test_sus_share_and_unresolved_sus_at_phrase_end() -> None:
    pitch, onset = melody([(67, 0, 16), (67, 16, 16)], 2 * BAR)
    gsus = (7, 0, 2)
    ours = read_chords(chord(C, 0, 16) + chord(gsus, 16, 16), TICKS, 2 * BAR)
    checks = ear_checks(pitch, onset, ours, ours, 0, 2 * BAR, BAR, 4, [BAR, 2 * BAR])
    assert checks.sus_share == pytest.approx(0.5)
    assert (checks.phrase_ends, checks.unresolved_sus) == (2, 1)


def test_shares_without_anything_to_judge_are_nan() -> None:
    pitch, onset = melody([(60, 0, 1)], BAR)
    empty = read_chords([], TICKS, BAR)
    checks = ear_checks(pitch, onset, empty, empty, 0, BAR, BAR, 4)
    assert math.isnan(checks.cadence) and math.isnan(checks.repeats)
    assert math.isnan(checks.root_accuracy) and math.isnan(checks.sus_share)
