"""What a MIDI backend hands over, as the bridge's events: raw bytes decoded by the MIDI 1.0
tables (anything that is not one valid message refused with its reason), and the backend's
delta stamps turned into monotonic arrival times. Pure: no ports, no threads."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.errors import BadMessageError
from bridge.midi.clock import Kind, MidiEvent

SHOWN_BYTES = 16  # of a bad message, in its log line

# data bytes after each status (MIDI 1.0 spec, table I–III): channel messages by high nibble,
# system messages by status; a status missing here is undefined and refused
_CHANNEL_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0,
                0xFE: 0, 0xFF: 0}
_REALTIME = {0xF8: Kind.CLOCK, 0xFA: Kind.START, 0xFB: Kind.CONTINUE, 0xFC: Kind.STOP}
SONG_POSITION, SYSEX_START, SYSEX_END = 0xF2, 0xF0, 0xF7
NOTE_OFF, NOTE_ON, CONTROL_CHANGE = 0x80, 0x90, 0xB0


def decode(data: Sequence[int], time_s: float) -> MidiEvent | None:
    """Raw bytes -> MidiEvent; None for messages the bridge does not use. Raises
    BadMessageError (a ValueError) for bytes that are not one valid MIDI message, its reason
    one of "empty", "no_status", "sysex", "data_byte", "undefined" (a status MIDI does not
    define) or "length" (truncated, or too long)."""
    if not data:
        raise BadMessageError("empty MIDI message", "empty")
    status, body = data[0], list(data[1:])
    if status == SYSEX_START:  # a whole system-exclusive message: valid, unused
        if len(body) < 1 or body[-1] != SYSEX_END or any(not 0 <= b <= 127 for b in body[:-1]):
            raise BadMessageError("system exclusive message without its end (F7) or with bad "
                                  "data", "sysex")
        return None
    if not 0x80 <= status <= 0xFF:
        raise BadMessageError(f"MIDI message starts with data byte {status}, not a status",
                              "no_status")
    if any(not 0 <= b <= 127 for b in body):
        raise BadMessageError(f"MIDI data bytes must be 0..127, got {body}", "data_byte")
    expected = (_SYSTEM_DATA.get(status) if status >= 0xF0
                else _CHANNEL_DATA[status & 0xF0])
    if expected is None:
        raise BadMessageError(f"status {status:#04x} is not defined by MIDI 1.0", "undefined")
    if len(body) != expected:
        raise BadMessageError(f"status {status:#04x} with {len(body)} data bytes, expected "
                              f"{expected}", "length")
    if status >= 0xF0:
        if status == SONG_POSITION:
            return MidiEvent(Kind.SONG_POSITION, time_s, 0, body[0] | body[1] << 7)
        kind = _REALTIME.get(status)
        return None if kind is None else MidiEvent(kind, time_s)
    kind_of = status & 0xF0
    channel = (status & 0x0F) + 1
    if kind_of == NOTE_ON and body[1] == 0:  # running-status note-off
        return MidiEvent(Kind.NOTE_OFF, time_s, channel, body[0], 0)
    kinds = {NOTE_ON: Kind.NOTE_ON, NOTE_OFF: Kind.NOTE_OFF, CONTROL_CHANGE: Kind.CONTROL_CHANGE}
    if kind_of not in kinds:
        return None
    return MidiEvent(kinds[kind_of], time_s, channel, body[0], body[1])


class ArrivalTimes:
    """Backend delta times -> monotonic seconds. The backend stamps each message when it
    arrived, but only relative to the previous one; the offset to our clock is the smallest
    (poll time - accumulated stamps) seen, i.e. that of the message we polled soonest."""

    def __init__(self) -> None:
        self._elapsed = 0.0
        self._offset: float | None = None

    def stamp(self, delta_s: float, polled_at: float) -> float:
        self._elapsed += max(delta_s, 0.0)
        offset = polled_at - self._elapsed
        if self._offset is None or offset < self._offset:
            self._offset = offset
        return self._elapsed + self._offset


def shown(data: Sequence[int]) -> str:
    """A message's first bytes in hex, for a log line."""
    shown = " ".join(f"{b:02x}" for b in data[:SHOWN_BYTES])
    return shown + (" …" if len(data) > SHOWN_BYTES else "")
