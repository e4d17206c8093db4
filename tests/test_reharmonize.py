"""Rule-based re-harmonization: donor roles re-realised on the target chords."""

import numpy as np

from engine.arranger.reharmonize import reharmonize_notes, target_pitch_class
from engine.types import Chord, ChordEvent

C_MAJOR_BEATS = np.array([0] * 8)  # two bars of C: the root per beat
CHROMA = np.zeros((8, 12))


def _donor():
    # bass C3, then C4 E4 G4 broken over beat 1, repeated each beat pair
    return np.array([[0, 48, 8, 70], [0, 60, 2, 60], [2, 64, 2, 60], [4, 67, 2, 60],
                     [8, 48, 8, 70], [8, 60, 2, 60], [10, 64, 2, 60], [12, 67, 2, 60]])


def test_roles_move_to_the_target_chord_keeping_register_and_rhythm():
    chords = [ChordEvent(Chord(5, "maj", 5), 0, 8), ChordEvent(Chord(9, "min", 9), 8, 8)]
    out = reharmonize_notes(_donor(), CHROMA, C_MAJOR_BEATS[:4], 0, chords, 0, 16)
    by_start = {}
    for start, dur, pitch, _ in out:
        by_start.setdefault(start, []).append((pitch, dur))
    assert sorted(by_start[0]) == [(53, 8), (65, 2)]  # bass F, root F
    assert by_start[2] == [(69, 2)] and by_start[4] == [(72, 2)]  # third A, fifth C
    # each role at the octave nearest the donor note: bass A2, root A3, third C4, fifth E4
    assert sorted(by_start[8]) == [(45, 8), (57, 2)]
    assert by_start[10] == [(60, 2)] and by_start[12] == [(64, 2)]
    for start, _, pitch, _ in out:
        chord = chords[0] if start < 8 else chords[1]
        assert pitch % 12 in {chord.chord.root_pc, (chord.chord.root_pc + 3) % 12,
                              (chord.chord.root_pc + 4) % 12, (chord.chord.root_pc + 7) % 12}


def test_notes_are_cut_at_a_chord_change_and_the_donor_tiles():
    chords = [ChordEvent(Chord(0, "maj", 0), 0, 4), ChordEvent(Chord(7, "maj", 7), 4, 28)]
    out = reharmonize_notes(_donor(), CHROMA, C_MAJOR_BEATS[:4], 0, chords, 0, 32)
    first_bass = [n for n in out if n[0] == 0 and n[2] < 55][0]
    assert first_bass[1] == 4  # the 8-step bass note stops at the change to G
    assert {s for s, *_ in out} >= {16, 18, 20, 24}  # second pass of the 16-step donor
    assert max(s + d for s, d, *_ in out) <= 32


def test_transposition_and_seventh_fallback():
    chord = ChordEvent(Chord(7, "7", 7), 0, 16)
    assert target_pitch_class(10, chord, 4, 5) == 5  # a donor seventh becomes F over G7
    plain = ChordEvent(Chord(7, "maj", 7), 0, 16)
    assert target_pitch_class(10, plain, 4, 5) == 7  # no seventh in G: the root
    assert target_pitch_class(2, plain, 1, 9) == 9  # a short ninth stays a ninth
    donor = np.array([[0, 62, 4, 60]])  # D4 over a D-rooted donor chord, shifted down 2
    out = reharmonize_notes(donor, CHROMA, np.array([2] * 4), 10, [plain], 0, 16)
    assert out == [(0, 4, 55, 60)]  # lowest note below G3 → the target bass G3
