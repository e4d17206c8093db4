"""The MIDI clock follower, melody capture and sender thread (bridge.midi.clock, .capture,
.sender) without ports: synthetic event streams with chosen arrival times, and a fake `send`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import pytest

from bridge.midi.capture import EndOn, MelodyCapture, Take
from bridge.midi.clock import (
    TICKS_PER_BEAT,
    ClockFollower,
    ClockSnapshot,
    Kind,
    MidiEvent,
)
from bridge.midi.sender import CONTROL, NOTE_OFF, NOTE_ON, Scheduled, Sender, schedule_parts
from bridge.types import ClipControl, ClipNote

BPM = 120.0
SPT = 60.0 / (BPM * TICKS_PER_BEAT)  # seconds per tick
JACK_PERIOD = 256 / 48_000
WAIT = 10.0  # seconds; only reached when a test is about to fail


def at(beats: float, t0: float = 1.0, bpm: float = BPM) -> float:
    return t0 + beats * 60.0 / bpm


def ticks(first: int, last: int, *, t0: float = 1.0, bpm: float = BPM,
          skip: Iterable[int] = (), quantum: float = 0.0) -> Iterator[MidiEvent]:
    """Clock ticks for positions first..last (inclusive) at `bpm`, the first at t0 + first
    tick; `quantum` delays each to the next multiple (JACK delivers at period starts)."""
    skipped = set(skip)
    for k in range(first, last + 1):
        if k in skipped:
            continue
        t = at(k / TICKS_PER_BEAT, t0, bpm)
        if quantum:
            t = (int(t / quantum) + 1) * quantum
        yield MidiEvent(Kind.CLOCK, t)


def ev(kind: Kind, time_s: float, channel: int = 0, data1: int = 0, data2: int = 0) -> MidiEvent:
    return MidiEvent(kind, time_s, channel, data1, data2)


def note(pitch: int, on_beats: float, off_beats: float, *, t0: float = 1.0, channel: int = 1,
         velocity: int = 90) -> list[MidiEvent]:
    return [ev(Kind.NOTE_ON, at(on_beats, t0) + 1e-4, channel, pitch, velocity),
            ev(Kind.NOTE_OFF, at(off_beats, t0) + 1e-4, channel, pitch, 0)]


def feed(follower: ClockFollower, events: Iterable[MidiEvent],
         capture: MelodyCapture | None = None) -> list[Take]:
    takes = []
    for event in sorted(events, key=lambda e: e.time_s):
        follower.handle(event)
        if capture is not None:
            take = capture.handle(event, follower)
            if take is not None:
                takes.append(take)
    return takes


# ---- clock follower ---------------------------------------------------------------------------

def test_start_then_ticks_count_24_per_beat_from_zero() -> None:
    follower = ClockFollower()
    feed(follower, [ev(Kind.START, 0.99), *ticks(0, 48)])
    assert follower.playing
    assert follower.position_beats(at(2.0)) == pytest.approx(2.0)
    # Between ticks the position is interpolated at the tempo, at most one tick ahead.
    assert follower.position_beats(at(2.0) + SPT / 2) == pytest.approx(2.0 + 0.5 / 24)
    assert follower.position_beats(at(3.0)) == pytest.approx(2.0 + 1 / 24)
    assert follower.tempo_bpm == pytest.approx(BPM)


def test_position_before_the_first_tick_is_the_start_position() -> None:
    follower = ClockFollower()
    feed(follower, [*ticks(0, 33, t0=0.0), ev(Kind.START, 0.70)])
    assert follower.position_beats(0.701) == 0.0
    snap = follower.snapshot()
    assert snap.playing and snap.ref_ticks == 0.0
    # The run's first tick is predicted from the running clock: the next one after Start.
    assert snap.ref_time_s == pytest.approx(34 * SPT)  # 33 * SPT < 0.70 < 34 * SPT
    # A clock that had paused gives no prediction: the first tick will tell.
    paused = ClockFollower()
    feed(paused, [*ticks(0, 33, t0=0.0), ev(Kind.STOP, 0.7), ev(Kind.START, 5.0)])
    assert paused.snapshot().ref_time_s is None
    feed(paused, [MidiEvent(Kind.CLOCK, 5.01), MidiEvent(Kind.CLOCK, 5.01 + SPT)])
    assert paused.snapshot().time_at(1 / 24) == pytest.approx(5.01 + SPT)
    assert paused.tempo_bpm == pytest.approx(BPM)


def test_stop_freezes_and_continue_resumes_after_the_last_tick() -> None:
    follower = ClockFollower()
    feed(follower, [ev(Kind.START, 0.99), *ticks(0, 30), ev(Kind.STOP, at(30 / 24) + 0.002)])
    assert not follower.playing
    stopped = follower.position_beats(5.0)
    assert stopped == pytest.approx((30 + 0.002 / SPT) / 24)
    feed(follower, [*ticks(31, 40, t0=1.5)])  # clock keeps running while stopped
    assert follower.position_beats(9.0) == stopped
    feed(follower, [ev(Kind.CONTINUE, 3.0), *ticks(0, 5, t0=3.01)])
    assert follower.position_beats(at(5 / 24, 3.01)) == pytest.approx(36 / 24)


def test_song_position_pointer_counts_sixteenths() -> None:
    follower = ClockFollower()
    feed(follower, [ev(Kind.SONG_POSITION, 0.5, data1=34)])  # bar 3, beat 3, 2nd 16th
    assert follower.position_beats(0.6) == pytest.approx(34 / 4)
    feed(follower, [ev(Kind.CONTINUE, 0.99), *ticks(0, 24)])
    assert follower.position_beats(at(1.0)) == pytest.approx(34 / 4 + 1.0)
    generation = follower.generation
    # A jump while playing (a DAW loop): the next tick marks the new position.
    feed(follower, [ev(Kind.SONG_POSITION, at(1.01), data1=0), *ticks(25, 30)])
    assert follower.generation == generation + 1
    assert follower.position_beats(at(30 / 24)) == pytest.approx(5 / 24)


def test_tempo_is_smoothed_over_jack_quantised_ticks() -> None:
    follower = ClockFollower()
    feed(follower, [ev(Kind.START, 0.9), *ticks(0, 96, bpm=97.0, quantum=JACK_PERIOD)])
    assert follower.tempo_bpm == pytest.approx(97.0, rel=0.01)
    assert follower.lost_ticks == 0
    # The fitted position stays within a JACK period of the truth.
    snap = follower.snapshot()
    assert snap.beats_at(at(4.0, bpm=97.0)) == pytest.approx(4.0, abs=JACK_PERIOD / (60 / 97))


def test_a_lost_tick_is_inferred_from_the_gap() -> None:
    follower = ClockFollower()
    feed(follower, [ev(Kind.START, 0.99), *ticks(0, 60, skip={30}, quantum=JACK_PERIOD)])
    assert follower.lost_ticks == 1
    assert follower.position_beats(at(60 / 24) + 0.006) == pytest.approx(60 / 24, abs=1 / 24)
    assert follower.snapshot().ref_ticks == 60
    assert follower.tempo_bpm == pytest.approx(BPM, rel=0.01)


def test_a_late_tick_followed_closely_is_not_counted_twice() -> None:
    follower = ClockFollower()
    events = [ev(Kind.START, 0.99), *ticks(0, 60)]
    late = [e for e in events if e.kind is Kind.CLOCK][30]
    events.remove(late)
    events.append(MidiEvent(Kind.CLOCK, late.time_s + SPT * 0.95))  # just before tick 31
    feed(follower, events)
    assert follower.lost_ticks == 0
    assert follower.snapshot().ref_ticks == 60


def test_a_tempo_drop_is_not_mistaken_for_lost_ticks() -> None:
    follower = ClockFollower()
    events = [ev(Kind.START, 0.99), *ticks(0, 48)]
    events += ticks(49, 96, t0=at(2.0) - 2.0, bpm=60.0)  # tick 48 at beat 2, then half speed
    feed(follower, events)
    assert follower.snapshot().ref_ticks == 96
    assert follower.tempo_bpm == pytest.approx(60.0, rel=0.01)


def test_snapshot_maps_beats_and_time_both_ways() -> None:
    snap = ClockSnapshot(True, 3, 48.0, 10.0, SPT)
    assert snap.tempo_bpm == pytest.approx(BPM)
    assert snap.time_at(2.0) == pytest.approx(10.0)
    assert snap.time_at(3.0) == pytest.approx(10.5)
    assert snap.beats_at(10.25) == pytest.approx(2.5)
    assert ClockSnapshot(True, 0, 0.0, None, None).time_at(1.0) is None


# ---- capture ------------------------------------------------------------------------------

def melody_events(t0: float = 1.0) -> list[MidiEvent]:
    return [*note(60, 0.0, 0.5, t0=t0), *note(64, 1.0, 2.0, t0=t0), *note(67, 2.5, 3.75, t0=t0),
            *note(72, 4.0, 5.0, t0=t0)]


def test_capture_ends_on_stop_with_beats_from_the_clock() -> None:
    follower, capture = ClockFollower(), MelodyCapture("stop")
    events = [ev(Kind.START, 0.99), *ticks(0, 130), *melody_events(),
              ev(Kind.NOTE_ON, at(5.2), 2, 50, 80),  # another channel: not the melody
              ev(Kind.STOP, at(5.4))]
    [take] = feed(follower, events, capture)
    clip = take.clip
    assert take.origin_beats == 0.0
    assert (clip.source, clip.ts_num, clip.ts_den, clip.length_beats) == ("midi", 4, 4, 8.0)
    assert clip.tempo_bpm == pytest.approx(BPM, rel=1e-3)
    got = [(n.pitch, round(n.start_beats, 3), round(n.duration_beats, 3)) for n in clip.notes]
    assert got == [(60, 0.0, 0.5), (64, 1.0, 1.0), (67, 2.5, 1.25), (72, 4.0, 1.0)]
    assert all(n.channel == 1 for n in clip.notes)


def test_capture_from_a_song_position_keeps_its_origin_and_truncates_held_notes() -> None:
    follower, capture = ClockFollower(), MelodyCapture("stop", ts_num=3, ts_den=4)
    events = [ev(Kind.SONG_POSITION, 0.5, data1=24),  # beat 6 = bar 3 of 3/4
              ev(Kind.CONTINUE, 0.99), *ticks(0, 80),
              *note(62, 0.5, 1.0), ev(Kind.NOTE_ON, at(2.0), 1, 65, 100),  # held at Stop
              ev(Kind.STOP, at(3.2))]
    [take] = feed(follower, events, capture)
    assert take.origin_beats == 6.0
    assert take.clip.length_beats == 6.0  # 3.2 beats -> 2 bars of 3/4
    got = [(n.pitch, round(n.start_beats, 3), round(n.duration_beats, 3)) for n in take.clip.notes]
    assert got == [(62, 0.5, 0.5), (65, 2.0, 1.2)]


def test_capture_ends_on_a_cc_at_the_nearest_barline_and_carries_on() -> None:
    follower, capture = ClockFollower(), MelodyCapture("cc:64")
    events = [ev(Kind.START, 0.99), *ticks(0, 24 * 14), *melody_events(),
              ev(Kind.NOTE_ON, at(7.0), 1, 74, 100),  # held across the end
              ev(Kind.CONTROL_CHANGE, at(8.1), 1, 64, 127),
              ev(Kind.NOTE_OFF, at(9.0), 1, 74, 0),
              ev(Kind.CONTROL_CHANGE, at(12.2), 1, 64, 127)]
    first, second = feed(follower, events, capture)
    assert (first.origin_beats, first.clip.length_beats) == (0.0, 8.0)
    assert [(n.pitch, round(n.duration_beats, 3)) for n in first.clip.notes][-1] == (74, 1.0)
    assert (second.origin_beats, second.clip.length_beats) == (8.0, 4.0)
    assert [(n.pitch, round(n.start_beats, 3), round(n.duration_beats, 3))
            for n in second.clip.notes] == [(74, 0.0, 1.0)]


def test_capture_ends_after_n_bars_and_stop_drops_the_unfinished_take() -> None:
    follower, capture = ClockFollower(), MelodyCapture("bars:2")
    events = [ev(Kind.START, 0.99), *ticks(0, 24 * 11), *melody_events(),
              *note(76, 8.5, 9.0), ev(Kind.STOP, at(11.0))]
    [take] = feed(follower, events, capture)
    assert (take.origin_beats, take.clip.length_beats, len(take.clip.notes)) == (0.0, 8.0, 4)
    assert not capture.recording  # the second take (note 76) was dropped at Stop


def test_an_empty_take_is_not_submitted() -> None:
    follower, capture = ClockFollower(), MelodyCapture("stop")
    assert feed(follower, [ev(Kind.START, 0.99), *ticks(0, 30), ev(Kind.STOP, 2.5)],
                capture) == []


@pytest.mark.parametrize("text", ["", "cc", "cc:128", "bars:0", "bars:x", "stop:1", "loop:2"])
def test_end_on_is_checked_at_construction(text: str) -> None:
    with pytest.raises(ValueError, match="end_on"):
        MelodyCapture(text)


def test_end_on_parses() -> None:
    assert EndOn.parse(" CC:64 ") == EndOn("cc", 64)
    assert EndOn.parse("bars:8") == EndOn("bars", 8)
    assert EndOn.parse("Loop") == EndOn("loop")


# ---- sender ---------------------------------------------------------------------------------

class FakeOutput:
    """Collects (time sent, bytes); `wait_for(n)` blocks until n messages went out."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, tuple[int, ...]]] = []
        self._cond = threading.Condition()

    def send(self, data: Sequence[int]) -> bool:
        with self._cond:
            self.messages.append((time.monotonic(), tuple(data)))
            self._cond.notify_all()
        return True

    def wait_for(self, count: int) -> list[tuple[float, tuple[int, ...]]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.messages) >= count, WAIT), self.messages
            return list(self.messages)


def test_schedule_parts_maps_parts_to_channels_and_song_positions() -> None:
    parts = {"chords": (ClipNote(48, 0.0, 2.0, 70, 9),), "piano": (ClipNote(60, 1.0, 0.5, 64),),
             "melody": (ClipNote(72, 0.0, 1.0),)}
    assert schedule_parts(parts, 8.0) == (
        Scheduled(8.0, NOTE_ON, 2, 48, 70), Scheduled(9.0, NOTE_ON, 3, 60, 64),
        Scheduled(9.5, NOTE_OFF, 3, 60), Scheduled(10.0, NOTE_OFF, 2, 48),
    )


def test_schedule_parts_puts_the_pedal_between_note_offs_and_note_ons() -> None:
    parts = {"piano": (ClipNote(60, 0.0, 1.0, 64), ClipNote(62, 1.0, 1.0, 64))}
    pedal = {"piano": (ClipControl(0.0, 64, 127, 9), ClipControl(1.0, 64, 0, 9),
                       ClipControl(1.0, 64, 127, 9)),
             "melody": (ClipControl(0.0, 64, 127),)}
    assert schedule_parts(parts, 4.0, pedal) == (
        Scheduled(4.0, CONTROL, 3, 64, 127), Scheduled(4.0, NOTE_ON, 3, 60, 64),
        # at beat 5: the old note ends, the pedal lifts and goes down again, the next starts
        Scheduled(5.0, NOTE_OFF, 3, 60), Scheduled(5.0, CONTROL, 3, 64, 0),
        Scheduled(5.0, CONTROL, 3, 64, 127), Scheduled(5.0, NOTE_ON, 3, 62, 64),
        Scheduled(6.0, NOTE_OFF, 3, 62),
    )


def test_sender_plays_on_time_and_silences_on_stop() -> None:
    out = FakeOutput()
    sender = Sender(out.send)
    try:
        parts = {"chords": (ClipNote(48, 0.0, 8.0, 70),),
                 "piano": tuple(ClipNote(60 + i, i * 0.25, 0.2, 64) for i in range(8))}
        sender.play(schedule_parts(parts, 0.0))
        start = time.monotonic() + 0.1
        sender.set_clock(ClockSnapshot(True, 1, 0.0, start, SPT))
        sent = out.wait_for(1 + 16)  # chord on, 8 piano on/off pairs
        notes = [(t, data) for t, data in sent if data[0] & 0xF0 in (0x80, 0x90)]
        errors = [t - (start + 0.125 * k) for k, (t, _) in
                  enumerate(m for m in notes if m[1][0] == 0x92)]
        assert len(errors) == 8
        assert max(abs(e) for e in errors) < 0.010  # sender-side precision (goal: <= 2 ms)
        assert sorted(e for e in errors)[len(errors) // 2] < 0.002
        assert sent[0][1] == (0x91, 48, 70)  # chords on channel 2
        # Stop: the sounding chord gets its note-off, then pedal up and all-notes-off on
        # channels 2 and 3.
        count = len(out.messages)
        sender.set_clock(ClockSnapshot(False, 2, 24.0, None, SPT))
        tail = [data for _, data in out.wait_for(count + 5)[count:]]
        assert tail == [(0x81, 48, 0), *SILENCE]
    finally:
        sender.close()
    assert [data for _, data in out.messages[-4:]] == SILENCE


SILENCE = [(0xB1, 64, 0), (0xB1, 123, 0), (0xB2, 64, 0), (0xB2, 123, 0)]


def test_sender_plays_the_pedal_in_time_and_lifts_it_on_a_new_result() -> None:
    out = FakeOutput()
    sender = Sender(out.send)
    try:
        parts = {"piano": tuple(ClipNote(60 + i, i * 0.5, 0.4, 64) for i in range(4))}
        pedal = {"piano": (ClipControl(0.0, 64, 127), ClipControl(1.0, 64, 0),
                           ClipControl(1.0, 64, 127))}
        sender.play(schedule_parts(parts, 0.0, pedal))
        start = time.monotonic() + 0.1
        sender.set_clock(ClockSnapshot(True, 1, 0.0, start, SPT))
        sent = out.wait_for(1 + 6 + 2 + 1)  # pedal down, 3 notes, pedal up + down, note on
        pedals = [(t, data) for t, data in sent if data[:2] == (0xB2, 64)]
        assert [data[2] for _, data in pedals] == [127, 0, 127]
        assert [data for _, data in sent[:2]] == [(0xB2, 64, 127), (0x92, 60, 64)]
        errors = [t - start - beat * 0.5 for (t, _), beat in zip(pedals, (0, 1, 1), strict=True)]
        assert max(abs(e) for e in errors) < 0.010
        # A new result while the pedal is down (every note has ended): the pedal comes up.
        count = len(out.wait_for(3 + 8))
        sender.play(())
        assert [data for _, data in out.wait_for(count + 4)[count:]] == SILENCE
    finally:
        sender.close()


def test_a_late_pedal_change_is_sent_where_a_late_note_is_skipped() -> None:
    out = FakeOutput()
    sender = Sender(out.send, late_limit_s=-1.0)  # every note-on counts as too late
    try:
        parts = {"piano": (ClipNote(60, 0.0, 0.5, 64),)}
        pedal = {"piano": (ClipControl(0.0, 64, 127), ClipControl(0.5, 64, 0))}
        sender.play(schedule_parts(parts, 0.0, pedal))
        sender.set_clock(ClockSnapshot(True, 1, 0.0, time.monotonic() + 0.02, SPT))
        assert [data for _, data in out.wait_for(2)] == [(0xB2, 64, 127), (0xB2, 64, 0)]
        assert sender.skipped_late == 1
    finally:
        sender.close()
    assert not any(data[0] == 0x92 for _, data in out.messages)


def test_sender_skips_what_the_transport_has_passed() -> None:
    out = FakeOutput()
    sender = Sender(out.send)
    try:
        parts = {"piano": tuple(ClipNote(60 + i, float(i), 0.5, 64) for i in range(4))}
        sender.play(schedule_parts(parts, 0.0))
        # Playing from beat 2 (a jump): the notes at beats 0 and 1 are never sent.
        sender.set_clock(ClockSnapshot(True, 1, 48.0, time.monotonic() + 0.02, SPT))
        sent = [data for _, data in out.wait_for(4)]
        assert [d[1] for d in sent if d[0] == 0x92] == [62, 63]
    finally:
        sender.close()
