"""Arranger building blocks: Viterbi, prefilter, melody avoidance, dynamics, pedal, chord input."""

import itertools

import mido
import numpy as np
import pytest

from engine.arranger.placement import (
    keep_clear_of_melody,
    melody_floor,
    pedal_events,
    shape_velocities,
)
from engine.arranger.selection import FITNESS_WEIGHT, TRANSITION_WEIGHT, prefilter, viterbi
from engine.chord_input import read_chord_events
from engine.types import Chord, ChordEvent


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    sizes = [3, 4, 2, 3]
    fitness = [rng.random(n) for n in sizes]
    transitions = [rng.random((a, b)) for a, b in zip(sizes, sizes[1:], strict=False)]
    transitions[1][0, 1] = -np.inf  # a forbidden move

    def total(path):
        s = sum(FITNESS_WEIGHT * f[j] for f, j in zip(fitness, path, strict=True))
        return s + sum(TRANSITION_WEIGHT * t[a, b]
                       for t, a, b in zip(transitions, path, path[1:], strict=False))

    best = max(itertools.product(*(range(n) for n in sizes)), key=total)
    path, score = viterbi(fitness, transitions)
    assert tuple(path) == best
    assert score == pytest.approx(total(best))


def test_prefilter_penalises_every_non_matching_level():
    levels = np.array([0, 2, 2, 4])
    assert prefilter(levels, 2).tolist() == [-1.0, 0.0, 0.0, -1.0]
    assert prefilter(levels, None).tolist() == [0.0] * 4


C_MAJOR = ChordEvent(Chord(0, "maj", 0), 0, 16)


def test_piano_moves_below_the_melody_and_avoids_clashes():
    melody = np.full(16, 72)  # C5 held
    notes = [
        (0, 4, 76, 80),  # E5 above the melody: an octave down
        (4, 4, 71, 80),  # B4 against C5 = major 7th below: clash → nearest C-major tone
        (8, 1, 66, 80),  # F#4 for a 16th: too short to count as against a sustained note
        (12, 4, 55, 80),  # G3 fine
    ]
    out = keep_clear_of_melody(notes, melody, [C_MAJOR])
    pitches = {start: pitch for start, _, pitch, _ in out}
    assert pitches[0] == 64
    assert pitches[4] in (67, 72 - 12) and (72 - pitches[4]) % 12 not in (1, 6, 11)
    assert pitches[8] == 66
    assert pitches[12] == 55
    assert all(p < 72 for p in pitches.values())


def test_velocity_arc_peaks_mid_phrase():
    notes = [(t, 1, 60, 80) for t in range(0, 64, 4)]
    shaped = [v for _, _, _, v in shape_velocities(notes, 0, 64)]
    assert max(shaped) == shaped[len(shaped) // 2] or max(shaped) == shaped[len(shaped) // 2 - 1]
    assert shaped[0] < max(shaped) and shaped[-1] < max(shaped)


def test_pedal_is_retaken_at_each_chord_change():
    chords = [ChordEvent(Chord(0, "maj", 0), 0, 16), ChordEvent(Chord(7, "maj", 7), 16, 16)]
    events = pedal_events(chords, [(0, 32)], 120.0)
    assert [(e.tick, e.down) for e in events] == [
        (30, True), (16 * 120, False), (16 * 120 + 30, True), (32 * 120, False)
    ]


def test_melody_floor_covers_rests_near_notes_only():
    pitch = np.array([-1] * 8 + [70, 70, 65, 65] + [-1] * 12)
    floor = melody_floor(pitch, reach=4)
    assert floor[8] == 70 and floor[10] == 65
    assert floor[5] == 70 and floor[13] == 65
    assert floor[0] == -1 and floor[23] == -1


def test_chord_file_is_read_as_chord_events(tmp_path):
    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Chords")])
    for pitches in ([48, 52, 55], [53, 57, 60], [55, 59, 62, 65], [48, 52, 55]):
        track += [mido.Message("note_on", note=p, velocity=70, time=0) for p in pitches]
        track += [mido.Message("note_off", note=p, velocity=0, time=1920 if i == 0 else 0)
                  for i, p in enumerate(pitches)]
    song.tracks.append(track)
    path = tmp_path / "chords.mid"
    song.save(path)
    events = read_chord_events(path, 64)
    assert [(e.chord.root_pc, e.chord.quality) for e in events] == [
        (0, "maj"), (5, "maj"), (7, "7"), (0, "maj")
    ]
    assert [e.start_16th for e in events] == [0, 16, 32, 48]
    assert events[-1].end_16th == 64


def test_dynamics_follow_the_melodys_climax_and_settle_at_the_cadence():
    from engine.arranger.placement import melody_contour

    # a 4-bar phrase climbing to its high point in bar 3, then settling low
    pitch = np.array([60] * 16 + [64] * 16 + [72] * 16 + [62] * 16, dtype=np.int16)
    contour = melody_contour(pitch, 0, 64)
    assert contour is not None
    notes = [(t, 1, 48, 80) for t in range(0, 64, 4)]
    shaped = [v for _, _, _, v in shape_velocities(notes, 0, 64, contour=contour)]
    loudest = int(np.argmax(shaped)) * 4
    assert 32 <= loudest < 48  # at the climax, not mid-phrase by rule
    assert shaped[-1] < max(shaped) and shaped[0] < max(shaped)
    # a phrase with no shape (one repeated note) keeps the plain arc
    assert melody_contour(np.full(64, 67, dtype=np.int16), 0, 64) is None
