"""The MIDI sender thread: plays a result's parts (chords on channel 2, piano on channel 3) and
their control changes (the piano's sustain pedal) in time with the DAW's clock. Backends send
at once, so timing is ours: each message's song position is turned into a deadline with the
follower's latest `ClockSnapshot` (current tempo, last clock tick), the thread sleeps until
~2 ms before it, then spins. On Stop, a jump, a new result or close it sends note-offs for
everything sounding, then on each silenced channel pedal up (CC 64 0: all-notes-off leaves
pedalled notes ringing) and all-notes-off (CC 123). After a jump the pedal stays up until the
schedule's next change (the notes before the jump are not played either).

No mido here: messages are raw bytes handed to a `send` function (the ports').
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bridge.midi.clock import STOPPED, ClockSnapshot
from bridge.types import PART_CHANNELS, SUSTAIN_PEDAL, ClipControl, ClipNote

logger = logging.getLogger(__name__)

SendFunction = Callable[[Sequence[int]], bool]  # raw message -> whether it went out
SPIN_S = 0.002  # sleep until this long before a deadline, then spin
LATE_LIMIT_S = 0.050  # a note-on this late is skipped (after a stall or a jump), not sent
MAX_WAIT_S = 0.25  # re-read the clock at least this often while waiting
ALL_NOTES_OFF = 123
SILENCE_CHANNELS = (PART_CHANNELS["chords"], PART_CHANNELS["piano"])
TIMING_LOG = 4096  # (song position, deadline, sent) kept for tests and the jitter benchmark


# What a scheduled message is; at one song position they go out in this order: notes end, the
# pedal changes (lifted before the next notes, pressed after the last ones ended), notes start.
NOTE_OFF, CONTROL, NOTE_ON = 0, 1, 2


@dataclass(frozen=True, order=True)
class Scheduled:
    """One message at a song position: a note-on/off or a control change."""

    beats: float
    kind: int  # NOTE_OFF, CONTROL or NOTE_ON
    channel: int  # 1-16
    number: int  # pitch or controller
    value: int = 0  # velocity or control value


def schedule_parts(
    parts: Mapping[str, Sequence[ClipNote]], origin_beats: float,
    controls: Mapping[str, Sequence[ClipControl]] | None = None,
) -> tuple[Scheduled, ...]:
    """A result's parts as note-on/off messages, and their control changes, at song positions
    (clip beats + origin). Known parts go to their channel (chords 2, piano 3); the melody is
    not echoed."""
    messages: list[Scheduled] = []
    for part, notes in parts.items():
        if part == "melody":
            continue
        for note in notes:
            channel = PART_CHANNELS.get(part, note.channel)
            start = origin_beats + note.start_beats
            messages.append(Scheduled(start, NOTE_ON, channel, note.pitch, note.velocity))
            messages.append(Scheduled(start + note.duration_beats, NOTE_OFF, channel,
                                      note.pitch))
        messages.extend(
            Scheduled(origin_beats + c.start_beats, CONTROL, PART_CHANNELS.get(part, c.channel),
                      c.controller, c.value)
            for c in (controls or {}).get(part, ()))
    return tuple(sorted(messages))


class Sender:
    """Owns the thread that sends scheduled messages. All methods may be called from any
    thread; `send` is only ever called from the sender thread (or from `close`, after it)."""

    def __init__(
        self, send: SendFunction, *, spin_s: float = SPIN_S, late_limit_s: float = LATE_LIMIT_S,
        clock: Callable[[], float] = time.monotonic, realtime: bool = True,
        silence_channels: Sequence[int] = SILENCE_CHANNELS,
    ) -> None:
        self._send_raw = send
        self._silence_channels = tuple(silence_channels)  # all-notes-off on these at a stop
        self._realtime = realtime
        self._spin_s = spin_s
        self._late_limit_s = late_limit_s
        self._now = clock
        self._cond = threading.Condition()
        self._clock = STOPPED
        self._generation = STOPPED.generation
        self._messages: tuple[Scheduled, ...] = ()
        self._index = 0
        self._reposition = True
        self._silence = False
        self._sounding: set[tuple[int, int]] = set()  # (channel, pitch)
        self._pedalled: set[int] = set()  # channels whose sustain pedal is down
        self._closed = False
        self.timing: deque[tuple[float, float, float]] = deque(maxlen=TIMING_LOG)
        self.sent = 0
        self.skipped_late = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="accobridge-midi-sender",
                                        daemon=True)
        self._thread.start()

    # ---- any thread ---------------------------------------------------------------------

    @property
    def clock(self) -> ClockSnapshot:
        """The latest clock snapshot it plays by."""
        with self._cond:
            return self._clock

    def set_clock(self, snapshot: ClockSnapshot) -> None:
        with self._cond:
            self._clock = snapshot
            self._cond.notify()

    def play(self, messages: Iterable[Scheduled]) -> None:
        """Replace what is scheduled (notes sounding from the old schedule are stopped)."""
        with self._cond:
            self._messages = tuple(sorted(messages))
            self._reposition = True
            self._silence = bool(self._sounding or self._pedalled)
            self._cond.notify()

    def clear(self) -> None:
        self.play(())

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread, then silence: note-offs for what sounds, all-notes-off."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        with self._cond:
            self._all_off()

    # ---- sender thread ------------------------------------------------------------------

    def _run(self) -> None:
        if self._realtime:
            _lowest_realtime_priority()
        try:
            while True:
                with self._cond:
                    due = self._next_due()
                    if due is None:
                        return
                deadline, generation, index = due
                while self._now() < deadline:  # the last ~2 ms: spin, letting others run
                    time.sleep(0)
                with self._cond:
                    # The live clock, not the copy `_next_due` took: a Stop (or jump) that
                    # came while spinning must stop this message too, or it sounds and is cut
                    # a moment later.
                    clock = self._clock
                    if (not self._closed and clock.playing and clock.generation == generation
                            and generation == self._generation and index == self._index
                            and not self._reposition):
                        self._send_due(self._messages[index], deadline)
                        self._index = index + 1
        except Exception:
            logger.exception("MIDI sender thread failed; streaming stopped")

    def _next_due(self) -> tuple[float, int, int] | None:
        """Wait (holding the condition) until a message is within `spin_s` of its deadline;
        returns (deadline, clock generation, index), or None once closed."""
        while not self._closed:
            clock = self._clock
            if clock.generation != self._generation:
                self._generation = clock.generation
                self._reposition = True
                if self._sounding or self._pedalled or not clock.playing:
                    self._silence = True
            if self._silence:
                self._silence = False
                self._all_off()
            if self._reposition and clock.ref_time_s is not None:
                self._reposition_at(clock)
            if (not clock.playing or self._reposition or clock.ref_time_s is None
                    or self._index >= len(self._messages)):
                self._cond.wait(MAX_WAIT_S)
                continue
            message = self._messages[self._index]
            deadline = clock.time_at(message.beats)
            assert deadline is not None
            now = self._now()
            if deadline - now > self._spin_s:
                self._cond.wait(min(deadline - now - self._spin_s, MAX_WAIT_S))
                continue
            if now - deadline > self._late_limit_s and message.kind == NOTE_ON:
                self.skipped_late += 1
                self._index += 1
                continue
            return deadline, self._generation, self._index
        return None

    def _reposition_at(self, clock: ClockSnapshot) -> None:
        """After a jump or a new schedule: go on from the clock's reference position (the last
        tick, or the first one of a run still to come). What lies between it and now is at
        most a tick late and goes out at once."""
        keys = [m.beats for m in self._messages]
        self._index = bisect.bisect_left(keys, clock.ref_ticks / 24.0 - 1e-9)
        self._reposition = False

    def _send_due(self, message: Scheduled, deadline: float) -> None:
        status = message.channel - 1
        key = (message.channel, message.number)
        if message.kind == CONTROL:  # never skipped when late: a lost pedal-up would hang
            data = (0xB0 | status, message.number, message.value)
            if message.number == SUSTAIN_PEDAL and message.value >= 64:  # MIDI's "on"
                self._pedalled.add(message.channel)
            elif message.number == SUSTAIN_PEDAL:
                self._pedalled.discard(message.channel)
        elif message.kind == NOTE_ON:
            if key in self._sounding:  # same pitch again before its note-off: restrike
                self._send((0x80 | status, message.number, 0))
            data = (0x90 | status, message.number, max(1, message.value))
            self._sounding.add(key)
        elif key in self._sounding:
            self._sounding.discard(key)
            data = (0x80 | status, message.number, 0)
        else:
            return  # its note-on was skipped, or already stopped
        sent_at = self._now()
        if self._send(data):
            self.timing.append((message.beats, deadline, sent_at))

    def _all_off(self) -> None:
        """Note-offs for what sounds, then on the parts' channels pedal up and all-notes-off
        (pedal first: a synth holds pedalled notes through all-notes-off)."""
        channels = set(self._silence_channels) | self._pedalled
        for channel, pitch in sorted(self._sounding):
            self._send((0x80 | (channel - 1), pitch, 0))
            channels.add(channel)
        self._sounding.clear()
        self._pedalled.clear()
        for channel in sorted(channels):
            self._send((0xB0 | (channel - 1), SUSTAIN_PEDAL, 0))
            self._send((0xB0 | (channel - 1), ALL_NOTES_OFF, 0))

    def _send(self, data: Sequence[int]) -> bool:
        try:
            ok = self._send_raw(data)
        except Exception:
            logger.exception("MIDI send failed")
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        return ok


def _lowest_realtime_priority() -> None:
    """Move the calling thread to SCHED_FIFO at the lowest priority where the OS allows it:
    above every ordinary thread (measured: waking late by 1-6 ms behind them happens a few
    times a minute otherwise), below JACK's own threads. Without the right (no rtprio limit,
    not Linux) the thread stays as it was."""
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:
        return
    try:
        policy = os.SCHED_FIFO
        setter(0, policy, os.sched_param(os.sched_get_priority_min(policy)))
    except OSError as err:
        logger.debug("MIDI sender thread stays at normal priority: %s", err)
