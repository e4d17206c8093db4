"""The whole piano part (docs/musicianship.md, "The piano part"): one key sounds one note, the
piano sits under the melody's velocities, nothing under a pickup, and the figure ends on a held,
pedalled final chord at the melody's last note."""

from dataclasses import replace

import numpy as np
import pytest

from engine.arranger.placement import (
    end_on_final_chord,
    final_voicing,
    from_first_downbeat,
    one_key_one_note,
    under_the_melody,
)
from engine.chords import chord_pitch_classes
from engine.demo import DEMO_TUNE, melody_from_steps
from engine.pipeline import arrange
from engine.types import Arrangement, Chord, Melody


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    # never the user's imported POP909 donors: the default texture library only
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "userdata"))


def stacked_onsets(notes) -> int:
    """Note-ons of a pitch that is already sounding (rows: start, duration, pitch, velocity)."""
    ordered = sorted(notes)
    return sum(any(p == pitch and s <= start < s + d for s, d, p, _ in ordered[:i])
               for i, (start, _, pitch, _) in enumerate(ordered))


def test_same_pitch_overlaps_are_cut_at_the_new_onset():
    notes = [
        (0, 8, 60, 80),  # C4 for half a bar, struck again at 4: cut to 4
        (4, 8, 60, 70),
        (4, 2, 60, 90),  # same pitch, same 16th: only the longer note stays
        (0, 16, 64, 80),  # E4 alone: untouched
        (2, 2, 67, 80), (4, 4, 67, 80),  # G4 that ends before the next one: untouched
    ]
    assert stacked_onsets(notes) == 2
    out = one_key_one_note(notes)
    assert stacked_onsets(out) == 0
    assert sorted(out) == [(0, 4, 60, 80), (0, 16, 64, 80), (2, 2, 67, 80), (4, 4, 67, 80),
                           (4, 8, 60, 70)]


def test_velocities_sit_under_the_melody_with_accents_kept_and_capped():
    piano = [(t, 2, 48, v) for t, v in enumerate([60, 100, 60, 60, 70, 60])]
    melody = [100, 96, 104, 100]
    out = [v for *_, v in under_the_melody(piano, melody)]
    gap = np.mean(melody) - np.mean(out)
    assert 8 <= gap <= 20  # 13 before the accent is capped (docs/musicianship.md: 10–20)
    assert max(out) == out[1] == 109  # the accent stays the loudest, capped under 110
    assert out[4] > out[0] == out[2] == out[3]  # relative shape kept
    loud = [v for *_, v in under_the_melody([(0, 2, 48, 60), (2, 2, 48, 120)], [127, 120])]
    assert max(loud) > 109 and max(loud) <= 127  # a melody that loud lets an accent through


def test_nothing_before_the_first_downbeat():
    assert from_first_downbeat([(0, 4, 48, 60), (4, 4, 48, 60), (8, 2, 52, 60)], 4) == [
        (4, 4, 48, 60), (8, 2, 52, 60)]


def test_final_voicing_has_root_in_the_bass_and_the_third_below_the_melody():
    for chord, melody_pitch in [(Chord(5, "maj", 5), 65), (Chord(9, "min", 9), 69),
                                (Chord(7, "7", 7), 71), (Chord(0, "maj", 0), 64)]:
        voicing = final_voicing(chord, melody_pitch)
        third = (chord.root_pc + (3 if chord.quality == "min" else 4)) % 12
        assert voicing[0] % 12 == chord.root_pc and voicing[0] == min(voicing)
        assert third in {p % 12 for p in voicing}
        assert all(p < melody_pitch for p in voicing)
        assert all(p % 12 in chord_pitch_classes(chord.root_pc, chord.quality) for p in voicing)
        assert len(set(voicing)) == len(voicing)


def test_the_figure_stops_at_the_last_onset():
    notes = [(0, 8, 48, 60), (8, 8, 55, 60), (12, 2, 60, 60), (14, 4, 64, 60)]
    out = end_on_final_chord(notes, 12, 16, Chord(0, "maj", 0), 67, 70)
    assert (0, 8, 48, 60) in out and (8, 4, 55, 60) in out  # cut at the last onset
    assert all(s < 12 for s, _, _, v in out if v == 60)  # nothing of the figure after it
    final = [n for n in out if n[0] == 12]
    assert {(d, v) for _, d, _, v in final} == {(4, 70)}


def _with_velocity(melody: Melody, velocity: int) -> Melody:
    return replace(melody, notes=tuple(replace(n, velocity=velocity) for n in melody.notes))


def _stacked(arrangement: Arrangement) -> int:
    return stacked_onsets([(n.start_tick, n.duration_tick, n.pitch, n.velocity)
                           for n in arrangement.piano_notes])


@pytest.fixture(scope="module")
def pickup_song() -> tuple[Melody, Arrangement]:
    melody = melody_from_steps([(67, 4), *DEMO_TUNE])  # a one-beat pickup, 16 bars, F major end
    return melody, arrange(melody)


def test_a_pickup_bar_gets_no_accompaniment(pickup_song):
    melody, arrangement = pickup_song
    downbeat = arrangement.harmonization.analysis.downbeat_16th
    assert downbeat == 4
    assert min(n.start_tick for n in arrangement.piano_notes) >= downbeat * melody.ticks_per_16th
    assert _stacked(arrangement) == 0


def test_the_last_bar_holds_a_pedalled_final_chord(pickup_song):
    melody, arrangement = pickup_song
    beat = melody.ticks_per_beat
    last = max(n.start_tick for n in melody.notes)
    final_onset = max(n.start_tick for n in arrangement.piano_notes)
    final = [n for n in arrangement.piano_notes if n.start_tick == final_onset]
    assert abs(final_onset - last) < beat
    assert min(n.duration_tick for n in final) >= beat
    bar_end = (last // (4 * beat) + 1) * 4 * beat + 4 * melody.ticks_per_16th  # after the pickup
    assert {n.end_tick for n in final} == {bar_end}
    chord = next(c.chord for c in arrangement.harmonization.chords
                 if c.start_16th * melody.ticks_per_16th <= last < c.end_16th
                 * melody.ticks_per_16th)
    assert min(final, key=lambda n: n.pitch).pitch % 12 == chord.root_pc
    assert (chord.root_pc + 4) % 12 in {n.pitch % 12 for n in final}  # F major's third, A
    downs = [e for e in arrangement.pedal if e.down and e.tick >= final_onset]
    ups = [e for e in arrangement.pedal if not e.down and e.tick > final_onset]
    assert len(downs) == 1 and downs[0].tick < final_onset + beat // 4
    assert [e.tick for e in ups] == [bar_end]


@pytest.mark.parametrize("melody_velocity", [64, 90, 112])
def test_the_arranged_piano_sits_under_the_melody(melody_velocity):
    melody = _with_velocity(melody_from_steps(DEMO_TUNE), melody_velocity)
    piano = [n.velocity for n in arrange(melody).piano_notes]
    assert melody_velocity - np.mean(piano) >= 8
    assert max(piano) < 110 or melody_velocity >= 110
