"""Every major/minor chord sounds its third (engine/arranger/thirds.py): small hand-made cases."""

from __future__ import annotations

import numpy as np

from engine.arranger.thirds import sound_thirds
from engine.types import Chord, ChordEvent

REST = -1


def event(root: int, quality: str, start: int, length: int) -> ChordEvent:
    return ChordEvent(Chord(root, quality, root), start, length)


def melody(pitch: int, length: int = 16) -> np.ndarray:
    return np.full(length, pitch, dtype=np.int16)


def test_an_open_fifth_gets_its_third_from_the_fifth() -> None:
    notes = [(0, 16, 36, 70), (0, 16, 48, 60), (0, 16, 55, 60)]  # C2 bass, C3, G3
    out = sound_thirds(notes, [event(0, "maj", 0, 16)], melody(72), 4)
    assert sorted(p for _, _, p, _ in out) == [36, 48, 52]  # G3 → E3
    minor = sound_thirds([(0, 16, 45, 70), (0, 16, 52, 60)], [event(9, "min", 0, 16)],
                         melody(76), 4)
    assert sorted(p for _, _, p, _ in minor) == [45, 48]  # A minor: E3 → C3


def test_nothing_moves_when_the_third_already_sounds() -> None:
    notes = [(0, 16, 36, 70), (0, 16, 48, 60), (0, 16, 55, 60)]
    sung = sound_thirds(notes, [event(0, "maj", 0, 16)], melody(76), 4)  # the melody sings E
    assert sung == notes
    played = notes + [(4, 4, 64, 60)]
    assert sound_thirds(played, [event(0, "maj", 0, 16)], melody(72), 4) == played


def test_the_bass_short_chords_and_other_qualities_are_left_alone() -> None:
    bass_only = [(0, 16, 43, 70), (0, 16, 50, 60)]  # G2 bass, D3: the fifth D may move …
    out = sound_thirds(bass_only, [event(7, "maj", 0, 16)], melody(79), 4)
    assert out == [(0, 16, 43, 70), (0, 16, 47, 60)]  # … to B2; the bass G2 stays
    short = [(0, 2, 36, 70), (0, 2, 55, 60)]
    assert sound_thirds(short, [event(0, "maj", 0, 2)], melody(72), 4) == short
    sus = [(0, 16, 36, 70), (0, 16, 55, 60)]
    assert sound_thirds(sus, [event(0, "sus4", 0, 16)], melody(72), 4) == sus


def test_a_third_that_would_clash_with_the_melody_is_not_forced() -> None:
    notes = [(0, 16, 36, 70), (0, 16, 55, 60)]
    # the melody sits on F over C major: an E under it is a major 7th below → leave it
    assert sound_thirds(notes, [event(0, "maj", 0, 16)], melody(65), 4) == notes


def test_a_bass_alone_gets_a_third_of_its_own_under_the_melody() -> None:
    out = sound_thirds([(0, 16, 36, 70)], [event(0, "maj", 0, 16)], melody(72), 4)
    assert out == [(0, 16, 36, 70), (0, 16, 64, 70)]  # E4, under the sung C5
    assert sound_thirds([], [event(0, "maj", 0, 16)], melody(72), 4) == []  # a rest stays


def test_an_added_third_stops_where_the_melody_would_clash_with_it() -> None:
    sung = np.array([72] * 8 + [77] * 8, dtype=np.int16)  # C5, then F5 (a semitone over E)
    out = sound_thirds([(0, 16, 36, 70)], [event(0, "maj", 0, 16)], sung, 4)
    assert out == [(0, 16, 36, 70), (0, 8, 64, 70)]  # E4 held until the F comes in
