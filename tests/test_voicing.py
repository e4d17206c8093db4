"""Voicing engine: style colours, register under the melody, smooth voice leading."""

import numpy as np
import pytest

from engine.chords import INTERVALS, TRIAD_OF
from engine.types import Chord, ChordEvent
from engine.voicing import style_quality, voice_chords


@pytest.mark.parametrize(
    ("quality", "degree", "style", "expected"),
    [
        ("maj7", 0, "pop_standard", "maj"),
        ("min9", 2, "pop_standard", "min"),
        ("hdim7", 11, "pop_standard", "dim"),
        ("maj", 0, "pop_complex", "maj7"),
        ("maj", 7, "pop_complex", "7"),
        ("min", 9, "pop_complex", "min7"),
        ("maj", 5, "rnb", "maj9"),
        ("min", 2, "rnb", "min9"),
        ("maj", 7, "rnb", "9"),
        ("min", 0, "dark", "minadd9"),
        ("maj7", 8, "dark", "maj"),
    ],
)
def test_style_quality(quality, degree, style, expected):
    assert style_quality(quality, degree, style) == expected


def test_every_quality_is_known_and_triad_map_is_closed():
    assert set(TRIAD_OF.values()) <= set(INTERVALS)
    for quality in INTERVALS:
        assert style_quality(quality, 0, "pop_standard") in {"maj", "min", "dim", "aug", "sus2",
                                                              "sus4"}


def _events(chords, length=16):
    return [ChordEvent(Chord(r, q, b), i * length, length) for i, (r, q, b) in enumerate(chords)]


def test_voicing_sits_below_the_melody_and_spells_the_chord():
    events = _events([(0, "maj", 0), (9, "min", 9), (5, "maj7", 5), (7, "7", 11)])
    melody = np.full(64, 72)
    melody[16:32] = 69  # A4 over the A-minor bar
    notes = voice_chords(events, melody, 120.0, 16, 0)
    for ev in events:
        tick = ev.start_16th * 120
        chord_notes = [n for n in notes if n.start_tick == tick]
        pitches = sorted(n.pitch for n in chord_notes)
        bass, upper = pitches[0], pitches[1:]
        assert bass % 12 == ev.chord.bass_pc and 34 <= bass <= 46
        assert {p % 12 for p in upper} <= {(ev.chord.root_pc + i) % 12
                                           for i in INTERVALS[ev.chord.quality]}
        assert max(upper) < melody[ev.start_16th]


def test_voice_leading_moves_less_than_root_position_blocks():
    events = _events([(0, "maj", 0), (5, "maj", 5), (7, "maj", 7), (9, "min", 9), (0, "maj", 0)])
    notes = voice_chords(events, np.full(80, 79), 120.0, 16, 0)
    uppers = []
    for ev in events:
        chord = sorted(n.pitch for n in notes if n.start_tick == ev.start_16th * 120)[1:]
        uppers.append(chord)
    moved = sum(abs(a - b) for x, y in zip(uppers, uppers[1:], strict=False)
                for a, b in zip(x, y, strict=True))
    root_position = [[60 + r, 64 + r, 67 + r] for r in (0, 5, 7, 9, 0)]
    naive = sum(abs(a - b) for x, y in zip(root_position, root_position[1:], strict=False)
                for a, b in zip(x, y, strict=True))
    assert moved < naive / 2


def test_long_chords_restrike_on_each_bar_line():
    events = [ChordEvent(Chord(0, "maj", 0), 8, 40)]  # from beat 3 of bar 1 into bar 3
    notes = voice_chords(events, np.full(64, -1), 120.0, 16, 0)
    starts = sorted({n.start_tick for n in notes})
    assert starts == [8 * 120, 16 * 120, 32 * 120]
    assert max(n.end_tick for n in notes) == 48 * 120


@pytest.mark.parametrize("register", ["low", "middle", "high"])
def test_a_long_song_stays_in_its_register(register):
    # round the circle of fifths, least-motion voice leading alone climbs a step per cycle
    # (measured: from about 56 to 64 in "low" over 8 cycles); the register's pull stops it
    from engine.types import Voicing
    from engine.voicing import REGISTER_CENTRE, REGISTER_SHIFT

    cycle = [(0, "maj", 0), (5, "maj", 5), (11, "dim", 11), (4, "min", 4), (9, "min", 9),
             (2, "min", 2), (7, "maj", 7)]
    events = _events(cycle * 8)
    notes = voice_chords(events, np.full(16 * len(events), -1), 120.0, 16, 0,
                         voicing=Voicing(register=register))
    means = []
    for ev in events:
        upper = sorted(n.pitch for n in notes if n.start_tick == ev.start_16th * 120)[1:]
        means.append(sum(upper) / len(upper))
    centre = REGISTER_CENTRE + REGISTER_SHIFT[register]
    assert all(abs(m - centre) <= 6 for m in means)
    assert abs(np.mean(means[-7:]) - np.mean(means[:7])) <= 3
