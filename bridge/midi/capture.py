"""Melody capture from MIDI: note on/off placed by the clock follower → a `bridge.types.Clip`
(source "midi"), ended by Stop, by a chosen CC, or after N bars. Pure: no ports, no threads.

A take starts when the transport starts (Start/Continue, at the position the next clock tick
marks). With `end_on="stop"` the take ends at Stop and its length is rounded up to whole bars;
a jump while playing (a DAW's loop sends a Song Position Pointer back to the loop start) ends it
too, and the next pass is a new take. With `"loop"` the take is the loop: the first pass, up to
the jump back, is the take (its length rounded up to whole bars: one loop), and later passes
are not recorded until Stop, so the result plays on every pass from the loop start. With
`"cc:NN"` a CC NN with value >= 64 ends it at the nearest barline; with `"bars:N"` it
ends after exactly N bars; in both, the next take starts where it ended, a note held across
the end continues into it, and Stop throws the unfinished take away.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from bridge.midi.clock import ClockFollower, Kind, MidiEvent
from bridge.types import MAX_CLIP_BARS, MAX_CLIP_NOTES, Clip, ClipNote

logger = logging.getLogger(__name__)

SOURCE = "midi"
MIN_NOTE_BEATS = 1.0 / 64  # a note-off in the same tick as its note-on still sounds
CC_THRESHOLD = 64  # pedal-style controllers: >= 64 is "pressed"


@dataclass(frozen=True)
class EndOn:
    """What ends a take: ``"stop"``, ``"loop"``, ``"cc"`` with a controller number, ``"bars"``
    with N."""

    kind: str
    value: int = 0

    @classmethod
    def parse(cls, text: str) -> EndOn:
        """``"stop"``, ``"loop"``, ``"cc:NN"`` (0-119) or ``"bars:N"`` (1-MAX_CLIP_BARS)."""
        kind, _, value = text.strip().lower().partition(":")
        if kind in ("stop", "loop") and not value:
            return cls(kind)
        limits = {"cc": (0, 119), "bars": (1, MAX_CLIP_BARS)}
        if kind in limits and value.isdigit():
            low, high = limits[kind]
            if low <= int(value) <= high:
                return cls(kind, int(value))
            raise ValueError(f"end_on {text!r}: {kind} must be {low}..{high}")
        raise ValueError(f"end_on {text!r}: expected 'stop', 'loop', 'cc:NN' or 'bars:N'")


@dataclass(frozen=True)
class Take:
    """A finished take: the clip (times from the take's start) and where it starts in the song,
    so that results can be played back in place."""

    clip: Clip
    origin_beats: float


class MelodyCapture:
    """Turns the note events of one MIDI input into takes. Feed every event *after* the
    follower has handled it, with `handle(event, follower)`; it returns a finished take."""

    def __init__(
        self, end_on: EndOn | str = "stop", *, ts_num: int = 4, ts_den: int = 4,
        channel: int | None = 1, name: str = "MIDI take",
    ) -> None:
        self.end_on = end_on if isinstance(end_on, EndOn) else EndOn.parse(end_on)
        if channel is not None and not 1 <= channel <= 16:
            raise ValueError(f"channel {channel}: 1..16, or None for omni")
        self.channel, self.name = channel, name
        self.set_meter(ts_num, ts_den)
        self.ts_num, self.ts_den = ts_num, ts_den
        self.bar_beats = ts_num * 4.0 / ts_den
        self._looped = False  # loop mode: the loop's take is done, until Stop
        self._origin: float | None = None  # song position of the take's start; None: idle
        self._held: dict[int, tuple[float, int]] = {}  # pitch -> (start, velocity)
        self._notes: list[ClipNote] = []
        self._dropped = 0
        self._count = 0
        self._tempo_bpm: float | None = None

    @property
    def recording(self) -> bool:
        return self._origin is not None

    def set_meter(self, ts_num: int, ts_den: int) -> None:
        """The meter of the next take (a take being recorded keeps its own). Any thread."""
        if not 1 <= ts_num <= 32 or ts_den not in (1, 2, 4, 8, 16, 32):
            raise ValueError(f"meter {ts_num}/{ts_den}: numerator 1..32, denominator a power "
                             "of two 1..32")
        self._next_meter = (ts_num, ts_den)  # one tuple, swapped whole: read at a take's start

    def handle(self, event: MidiEvent, follower: ClockFollower) -> Take | None:
        kind = event.kind
        if follower.tempo_bpm is not None:
            self._tempo_bpm = follower.tempo_bpm
        if kind in (Kind.START, Kind.CONTINUE, Kind.STOP, Kind.SONG_POSITION):
            take = None
            jumped = self._origin is not None and kind is not Kind.STOP
            if self._origin is not None:
                take = self._end_or_drop(follower.jumped_from_beats)
            if kind in (Kind.STOP, Kind.START):
                self._looped = False
            elif jumped and take is not None and self.end_on.kind == "loop":
                self._looped = True  # the jump back closed the loop: it is the take
            if follower.playing and kind is not Kind.STOP and not self._looped:
                self._begin(follower.position_beats(event.time_s))
            return take
        if self._origin is None:
            return None
        position = follower.position_beats(event.time_s)
        finished = self._end_after_bars(position)
        if kind in (Kind.NOTE_ON, Kind.NOTE_OFF) and self._wanted(event):
            if kind is Kind.NOTE_ON:
                self._note_on(event.data1, event.data2, position)
            else:
                self._note_off(event.data1, position)
        elif (kind is Kind.CONTROL_CHANGE and self.end_on.kind == "cc"
              and event.data1 == self.end_on.value and event.data2 >= CC_THRESHOLD):
            bars = max(1, round((position - self._origin) / self.bar_beats))
            finished = self._finish(self._origin + bars * self.bar_beats, carry=True)
        return finished

    def _wanted(self, event: MidiEvent) -> bool:
        return self.channel is None or event.channel == self.channel

    # ---- takes --------------------------------------------------------------------------

    def _begin(self, origin: float) -> None:
        self.ts_num, self.ts_den = self._next_meter
        self.bar_beats = self.ts_num * 4.0 / self.ts_den
        self._origin = origin
        self._held.clear()
        self._notes.clear()
        self._dropped = 0

    def _end_or_drop(self, position: float) -> Take | None:
        """Stop or a jump (Start, Continue, Song Position Pointer) ends the take at `position`
        in "stop" and "loop" mode, and throws it away in the others."""
        assert self._origin is not None
        if self.end_on.kind not in ("stop", "loop"):
            logger.info("transport stopped or jumped: unfinished take dropped")
            self._origin = None
            return None
        bars = max(1, math.ceil((position - self._origin) / self.bar_beats - 1e-6))
        return self._finish(self._origin + bars * self.bar_beats, carry=False,
                            held_until=position)

    def _end_after_bars(self, position: float) -> Take | None:
        assert self._origin is not None
        bars = min(self.end_on.value if self.end_on.kind == "bars" else MAX_CLIP_BARS,
                   MAX_CLIP_BARS)
        end = self._origin + bars * self.bar_beats
        if position < end - 1e-9:
            return None
        return self._finish(end, carry=self.end_on.kind not in ("stop", "loop"))

    def _finish(self, end: float, *, carry: bool, held_until: float | None = None) -> Take | None:
        """Close the take at song position `end`; with `carry`, start the next one there and
        move notes at or after `end`, and notes still held, into it."""
        origin = self._origin
        assert origin is not None
        until = min(end, held_until) if held_until is not None else end
        notes = [n for n in self._notes if origin + n.start_beats < end - 1e-9]
        later = [n for n in self._notes if origin + n.start_beats >= end - 1e-9]
        held = dict(self._held)
        for pitch, (start, velocity) in held.items():
            if start < end - 1e-9:
                notes.append(self._note(pitch, start, max(until, start + MIN_NOTE_BEATS),
                                        velocity, origin))
        dropped = self._dropped
        self._origin = None
        self._notes = []
        self._held = {}
        if carry:
            self._begin(end)
            self._held = {p: (max(s, end), v) for p, (s, v) in held.items()}
            self._notes = [
                ClipNote(n.pitch, origin + n.start_beats - end, n.duration_beats, n.velocity,
                         n.channel)
                for n in later
            ]
        if dropped:
            logger.warning("take had more than %d notes: %d dropped", MAX_CLIP_NOTES, dropped)
        if not notes:
            logger.info("empty take (%.2f beats from %.2f) not submitted", end - origin, origin)
            return None
        self._count += 1
        clip = Clip(
            source=SOURCE, name=f"{self.name} {self._count}", length_beats=end - origin,
            tempo_bpm=round(self._tempo_bpm or 120.0, 3), ts_num=self.ts_num,
            ts_den=self.ts_den,
            notes=tuple(sorted(notes, key=lambda n: (n.start_beats, n.pitch))),
        )
        return Take(clip, origin)

    # ---- notes --------------------------------------------------------------------------

    def _note_on(self, pitch: int, velocity: int, position: float) -> None:
        if pitch in self._held:  # retriggered without a note-off: end the first one here
            self._note_off(pitch, position)
        self._held[pitch] = (position, velocity)

    def _note_off(self, pitch: int, position: float) -> None:
        held = self._held.pop(pitch, None)
        if held is None or self._origin is None:
            return  # a note-off for a note that started before the take
        if len(self._notes) >= MAX_CLIP_NOTES:
            self._dropped += 1
            return
        start, velocity = held
        self._notes.append(self._note(pitch, start, position, velocity, self._origin))

    @staticmethod
    def _note(pitch: int, start: float, end: float, velocity: int, origin: float) -> ClipNote:
        start = max(start, origin)
        return ClipNote(pitch, start - origin, max(end - start, MIN_NOTE_BEATS), velocity, 1)
