"""Following the DAW's MIDI clock: 24 ppqn ticks, Start/Continue/Stop and Song Position Pointer
give the song position in beats; a least-squares fit over recent tick times gives the tempo and
the beats <-> seconds map the sender plays by. Pure: no ports, no mido, no threads.

Re-anchoring: at every bar line the follower notes where the fit puts it (the anchor). A gap of
more than `MAX_LOST_TICKS` while playing — a JACK xrun loses every tick of the cycles a client
misses — is measured against that anchor, so the count (the song position) is right again at
the first tick after it instead of staying behind for the rest of the take.

Also the decoded MIDI event (`MidiEvent`) that the ports hand to the follower and the capture.

Times are seconds on `time.monotonic()`'s clock, stamped when the MIDI backend received the
message. Positions are song positions (beats from the song's start), as SPP counts them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
TICKS_PER_SIXTEENTH = 6  # Song Position Pointer counts "MIDI beats" (16ths) of 6 clocks
FIT_TICKS = 24  # one beat of ticks: the window of the tempo/phase fit
# A tick that comes this many tick periods after the previous one means the tick in between
# was lost (JACK drops events of a client that misses a cycle, protocol.md trap 1). Between
# 1 and this, it is just jitter (JACK quantises arrival to its period).
LOST_TICK_GAP = 1.6
MAX_LOST_TICKS = 3  # a longer gap is the clock pausing (or a tempo jump), not loss: refit
MIN_FIT_FOR_LOSS = 8  # ticks in the fit before a gap counts as loss (one interval is too noisy)
# While playing, a longer gap of up to a bar is an xrun (the DAW's clock ran on, its ticks were
# lost on the way): the ticks are counted from the last bar line's anchor. Longer: a pause.
DEFAULT_TEMPO_BPM = 120.0


class Kind(StrEnum):
    CLOCK = "clock"
    START = "start"
    CONTINUE = "continue"
    STOP = "stop"
    SONG_POSITION = "songpos"  # data1: position in 16ths
    NOTE_ON = "note_on"  # data1: pitch, data2: velocity (> 0)
    NOTE_OFF = "note_off"  # data1: pitch, data2: release velocity (note-on velocity 0 too)
    CONTROL_CHANGE = "control_change"  # data1: controller, data2: value


@dataclass(frozen=True, slots=True)
class MidiEvent:
    """One decoded MIDI message with the time it arrived."""

    kind: Kind
    time_s: float
    channel: int = 0  # 1-16 (user-facing) for channel messages, 0 for system messages
    data1: int = 0
    data2: int = 0


@dataclass(frozen=True)
class ClockSnapshot:
    """The follower's view of the transport at one moment, for another thread (the sender).

    While playing, song position `ref_ticks` falls at `ref_time_s` and advances one tick every
    `seconds_per_tick`. `ref_time_s` is None while the timing is unknown (no clock yet).
    `generation` changes at every jump: Start, Continue, Stop, Song Position Pointer.
    """

    playing: bool
    generation: int
    ref_ticks: float
    ref_time_s: float | None
    seconds_per_tick: float | None

    @property
    def tempo_bpm(self) -> float | None:
        if self.seconds_per_tick is None:
            return None
        return 60.0 / (self.seconds_per_tick * TICKS_PER_BEAT)

    def time_at(self, beats: float) -> float | None:
        """When song position `beats` is (was) reached at the current tempo."""
        if self.ref_time_s is None or self.seconds_per_tick is None:
            return None
        return self.ref_time_s + (beats * TICKS_PER_BEAT - self.ref_ticks) * self.seconds_per_tick

    def beats_at(self, time_s: float) -> float | None:
        """The song position at `time_s` at the current tempo (not clamped)."""
        if self.ref_time_s is None or self.seconds_per_tick is None:
            return None
        ticks = self.ref_ticks + (time_s - self.ref_time_s) / self.seconds_per_tick
        return ticks / TICKS_PER_BEAT


STOPPED = ClockSnapshot(False, 0, 0.0, None, None)


class ClockFollower:
    """Follows one MIDI clock. Feed it every event with `handle`; not thread-safe (one thread
    feeds it and publishes `snapshot()`s).

    MIDI 1.0 semantics: after Start (position 0) or Continue (position from the last Stop or
    Song Position Pointer) the *next* clock tick marks that position; each later tick is one
    24th of a beat further.
    """

    def __init__(self, bar_beats: float = 4.0) -> None:
        self.bar_beats = bar_beats  # the meter's bar: where anchors are taken, the longest xrun
        # Timing fit over (tick serial, arrival time); serials count every tick ever seen plus
        # the ticks inferred lost, playing or not (many DAWs send clock while stopped).
        self._fit: deque[tuple[int, float]] = deque(maxlen=FIT_TICKS)
        self._serial = 0
        self._slope: float | None = None  # seconds per tick
        self._intercept = 0.0
        self._playing = False
        self._generation = 0
        self._next_ticks = 0  # position the next tick marks when it starts a run
        self._last_ticks: int | None = None  # position of the last tick of this run
        self._last_serial = 0
        self._stopped_beats = 0.0  # where Stop left us (between ticks), until a jump
        self._start_time: float | None = None
        self._jumped_from = 0.0
        self._inferred = 0  # ticks inferred lost at the previous tick, maybe wrongly
        self._anchor: int | None = None  # serial of this run's last bar line
        self.ticks = 0
        self.lost_ticks = 0  # inferred lost ticks (net of ones that turned out only late)

    # ---- feeding ------------------------------------------------------------------------

    def handle(self, event: MidiEvent) -> bool:
        """Apply a clock/transport event; returns whether it was one."""
        kind = event.kind
        if kind is Kind.CLOCK:
            self.tick(event.time_s)
        elif kind is Kind.START:
            self.start(event.time_s)
        elif kind is Kind.CONTINUE:
            self.resume(event.time_s)
        elif kind is Kind.STOP:
            self.stop(event.time_s)
        elif kind is Kind.SONG_POSITION:
            self.song_position(event.data1, event.time_s)
        else:
            return False
        return True

    def start(self, time_s: float) -> None:
        self._next_ticks = 0
        self._begin_run(time_s)

    def resume(self, time_s: float) -> None:
        self._begin_run(time_s)

    def _begin_run(self, time_s: float) -> None:
        self._jumped_from = self.position_beats(time_s)
        self._playing = True
        self._last_ticks = None
        self._start_time = time_s
        self._inferred = 0
        self._anchor = None
        self._generation += 1

    def stop(self, time_s: float) -> None:
        self._jumped_from = self.position_beats(time_s)
        if self._playing:
            self._stopped_beats = self._jumped_from
            if self._last_ticks is not None:
                self._next_ticks = self._last_ticks + 1
        self._playing = False
        self._last_ticks = None
        self._anchor = None
        self._generation += 1

    def song_position(self, sixteenths: int, time_s: float) -> None:
        self._jumped_from = self.position_beats(time_s)
        self._next_ticks = max(0, sixteenths) * TICKS_PER_SIXTEENTH
        self._stopped_beats = self._next_ticks / TICKS_PER_BEAT
        self._last_ticks = None  # while playing, the next tick marks the new position
        self._start_time = None
        self._anchor = None
        self._generation += 1

    def tick(self, time_s: float) -> None:
        self.ticks += 1
        advance = 1 + self._lost_before(time_s)
        self._serial += advance
        if advance > 0:
            self._fit.append((self._serial, time_s))
            self._refit()
        else:  # an earlier tick was only late: drop fit points it labelled too far ahead
            while self._fit and self._fit[-1][0] > self._serial:
                self._fit.pop()
            self._refit()
        if not self._playing:
            return
        if self._last_ticks is None:
            self._last_ticks = self._next_ticks  # the first tick of a run marks its position
        else:
            self._last_ticks += advance
        bar_ticks = max(1, round(self.bar_beats * TICKS_PER_BEAT))
        if self._anchor is None or (self._last_ticks // bar_ticks
                                    != (self._last_ticks - advance) // bar_ticks):
            self._anchor = self._serial  # a bar line (or the run's first tick): re-anchor
        self._last_serial = self._serial

    def _lost_before(self, time_s: float) -> int:
        """How many ticks were lost just before this one (negative: undo an earlier guess)."""
        if self._slope is None or len(self._fit) < MIN_FIT_FOR_LOSS:
            self._inferred = 0
            return 0
        last_serial = self._fit[-1][0]
        gap = (time_s - self._fitted_time(last_serial)) / self._slope  # in ticks, ~1
        inferred, self._inferred = self._inferred, 0
        bar_ticks = self.bar_beats * TICKS_PER_BEAT
        if (gap > MAX_LOST_TICKS + 1.5 and self._playing and self._anchor is not None
                and gap <= bar_ticks + 1):
            # An xrun: this tick's serial from the time since the bar's anchor (the fitted
            # line, at the last beat's tempo), as if no tick had been lost.
            serial = self._anchor + round((time_s - self._fitted_time(self._anchor))
                                          / self._slope)
            lost = max(0, serial - last_serial - 1)
            self._inferred = lost
            self.lost_ticks += lost
            return lost
        if gap > MAX_LOST_TICKS + 1.5:
            # The clock paused (many DAWs send it only while playing): start a new fit, at the
            # old tempo until there are ticks to measure it.
            self._fit.clear()
            return self._undo(inferred)
        if inferred and gap >= LOST_TICK_GAP:
            # Two "losses" in a row: the tempo dropped. Measure it afresh.
            self._fit.clear()
            self._slope = None
            return self._undo(inferred)
        if gap >= LOST_TICK_GAP:
            lost = min(round(gap) - 1, MAX_LOST_TICKS)
            self._inferred = lost
            self.lost_ticks += lost
            return lost
        if inferred and gap < 1.0 - (LOST_TICK_GAP - 1.0):
            # This tick follows the previous one closely: that one was late, not after a loss.
            return self._undo(inferred)
        return 0

    def _undo(self, inferred: int) -> int:
        """Take back ticks wrongly inferred lost at the previous tick."""
        self.lost_ticks -= inferred
        return -inferred

    def _refit(self) -> None:
        """Least squares time = intercept + slope * serial over the window."""
        n = len(self._fit)
        if n < 2:
            if n == 1 and self._slope is not None:  # keep the tempo, move the phase
                serial, time_s = self._fit[0]
                self._intercept = time_s - self._slope * serial
            return
        mean_x = sum(s for s, _ in self._fit) / n
        mean_y = sum(t for _, t in self._fit) / n
        sxx = sum((s - mean_x) ** 2 for s, _ in self._fit)
        sxy = sum((s - mean_x) * (t - mean_y) for s, t in self._fit)
        slope = sxy / sxx
        if slope > 0 and math.isfinite(slope):
            self._slope = slope
            self._intercept = mean_y - slope * mean_x

    def _fitted_time(self, serial: int) -> float:
        assert self._slope is not None
        return self._intercept + self._slope * serial

    # ---- reading ------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def jumped_from_beats(self) -> float:
        """Where the song was just before the last Start, Continue, Stop or Song Position
        Pointer (a take that this jump ends, ends there)."""
        return self._jumped_from

    @property
    def seconds_per_tick(self) -> float | None:
        return self._slope

    @property
    def tempo_bpm(self) -> float | None:
        """Smoothed tempo (least squares over the last beat of ticks); None before 2 ticks."""
        if self._slope is None:
            return None
        return 60.0 / (self._slope * TICKS_PER_BEAT)

    def position_beats(self, time_s: float) -> float:
        """Song position at `time_s` (not before the last event fed): between ticks it is
        interpolated at the current tempo, never more than one tick past the last one."""
        if not self._playing:
            return self._stopped_beats
        if self._last_ticks is None:
            return self._next_ticks / TICKS_PER_BEAT  # started, first tick still to come
        fraction = 0.0
        if self._slope is not None:
            since = time_s - self._fitted_time(self._last_serial)
            fraction = min(max(since / self._slope, -0.5), 1.0)
        return (self._last_ticks + fraction) / TICKS_PER_BEAT

    def snapshot(self) -> ClockSnapshot:
        if not self._playing:
            return ClockSnapshot(False, self._generation, self._stopped_beats * TICKS_PER_BEAT,
                                 None, self._slope)
        if self._slope is None:
            ref_ticks = self._last_ticks if self._last_ticks is not None else self._next_ticks
            return ClockSnapshot(True, self._generation, float(ref_ticks), None, None)
        if self._last_ticks is not None:
            return ClockSnapshot(True, self._generation, float(self._last_ticks),
                                 self._fitted_time(self._last_serial), self._slope)
        # Started, first tick of the run still to come. When the clock kept running through
        # the Start, it is the next tick; when it was paused, nobody knows yet.
        last_time = self._fitted_time(self._fit[-1][0])
        start = self._start_time if self._start_time is not None else last_time
        if last_time + 2 * self._slope < start:
            return ClockSnapshot(True, self._generation, float(self._next_ticks), None,
                                 self._slope)
        next_time = last_time + self._slope
        while next_time < start:
            next_time += self._slope
        return ClockSnapshot(True, self._generation, float(self._next_ticks), next_time,
                             self._slope)
