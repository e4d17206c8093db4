"""bridge.pedal: the sustain pedal rendered into note lengths (for Ableton Live)."""

from __future__ import annotations

from bridge.pedal import sustain_into_durations
from bridge.types import ClipControl, ClipNote


def note(pitch: int, start: float, duration: float) -> ClipNote:
    return ClipNote(pitch, start, duration, 80, 3)


def pedal(*changes: tuple[float, int]) -> tuple[ClipControl, ...]:
    return tuple(ClipControl(beats, 64, value, 3) for beats, value in changes)


def lengths(notes: tuple[ClipNote, ...]) -> list[float]:
    return [n.duration_beats for n in notes]


def test_notes_sounding_at_the_press_or_starting_under_it_hold_until_the_release() -> None:
    notes = (note(60, 0.0, 0.5), note(64, 0.75, 0.5), note(67, 1.5, 0.25), note(72, 3.5, 0.25))
    held = sustain_into_durations(notes, pedal((1.0, 127), (3.0, 0)))
    # 60 ended before the press; 64 sounds at it; 67 starts under it; 72 starts after it
    assert lengths(held) == [0.5, 2.25, 1.5, 0.25]
    assert [(n.pitch, n.start_beats, n.velocity, n.channel) for n in held] == [
        (n.pitch, n.start_beats, n.velocity, n.channel) for n in notes]


def test_a_note_released_exactly_at_the_press_or_outlasting_the_pedal_keeps_its_length() -> None:
    notes = (note(60, 0.0, 1.0), note(62, 1.0, 3.0))
    assert lengths(sustain_into_durations(notes, pedal((1.0, 127), (2.0, 0)))) == [1.0, 3.0]


def test_never_past_the_next_onset_of_the_same_pitch() -> None:
    notes = (note(60, 0.0, 0.5), note(60, 1.0, 0.5), note(64, 0.0, 0.5))
    held = sustain_into_durations(notes, pedal((0.25, 127), (4.0, 0)))
    assert lengths(held) == [1.0, 3.0, 4.0]


def test_each_press_holds_to_its_own_release_and_changes_apply_in_order() -> None:
    notes = (note(48, 0.0, 0.5), note(52, 2.0, 0.5), note(55, 4.0, 0.5))
    # lifted and pressed again at 2.0 (a legato pedal change): the note at 2.0 joins the new press
    held = sustain_into_durations(notes, pedal((0.0, 127), (2.0, 0), (2.0, 127), (3.0, 0),
                                               (5.0, 100)))
    assert lengths(held) == [2.0, 1.0, 0.5]  # the last press is never lifted: held to 4.5 only


def test_without_a_pedal_or_notes_nothing_changes() -> None:
    notes = (note(60, 0.0, 0.5), note(62, 1.0, 0.5))
    assert sustain_into_durations(notes, ()) == notes
    other = (ClipControl(0.0, 1, 127, 3),)  # the modulation wheel is not a pedal
    assert sustain_into_durations(notes, other) == notes
    assert sustain_into_durations(notes, pedal((0.0, 0), (0.25, 63))) == notes  # never down
    assert sustain_into_durations((), pedal((0.0, 127), (1.0, 0))) == ()


def test_unsorted_changes_are_read_in_time_order() -> None:
    notes = (note(60, 0.0, 0.5),)
    assert lengths(sustain_into_durations(notes, pedal((2.0, 0), (0.25, 127)))) == [2.0]
