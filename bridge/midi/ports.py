"""The bridge's one door to MIDI hardware and virtual ports: the only module importing
python-rtmidi; it decodes the wire bytes itself (mido is engine.midi_io's, for files). Opens
"AccoBridge In" / "AccoBridge Out", reads (on its own thread, which only decodes and
enqueues), sends, and watches the ports: one that vanishes is reported and re-opened when it
can be.

Backend (`api` argument, else `ACCOBRIDGE_MIDI_API`): "UNIX_JACK", "LINUX_ALSA",
"MACOSX_CORE", "WINDOWS_MM" or "auto" (the default: JACK when a JACK server answers, else the
platform's default). Virtual ports everywhere but Windows, which has none: there the ports are
existing ones (loopMIDI) whose names contain "AccoBridge In" / "AccoBridge Out", compared
case-insensitively (`in_match`/`out_match` choose other names, on any platform).

Input is polled rather than called back: RtMidi's JACK backend runs callbacks on JACK's
real-time thread, and a Python callback there waits for the GIL and makes the client miss
its cycle (its MIDI events are then lost, protocol.md trap 1). Arrival times come from the
backend's own timestamps (JACK: the cycle that received the message), not from the poll.

Every RtMidi object is closed on every path (failures included, and at interpreter exit):
jack2 leaks a server slot for each client a process leaves open (trap 2).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rtmidi

from bridge.errors import BridgeError
from bridge.midi.clock import Kind, MidiEvent

logger = logging.getLogger(__name__)

API_ENV = "ACCOBRIDGE_MIDI_API"
IN_PORT_NAME = "AccoBridge In"
OUT_PORT_NAME = "AccoBridge Out"
POLL_S = 0.001  # input poll period: adds at most this to processing latency, not to timestamps
WATCH_S = 0.5  # how often the watchdog checks the ports (and retries opening them)
QUEUE_SIZE = 4096  # RtMidi's input queue, in messages

APIS: dict[str, int] = {
    "UNIX_JACK": rtmidi.API_UNIX_JACK,
    "LINUX_ALSA": rtmidi.API_LINUX_ALSA,
    "MACOSX_CORE": rtmidi.API_MACOSX_CORE,
    "WINDOWS_MM": rtmidi.API_WINDOWS_MM,
    "UNSPECIFIED": rtmidi.API_UNSPECIFIED,
}

# data bytes after each status (MIDI 1.0 spec, table I–III): channel messages by high nibble,
# system messages by status; a status missing here is undefined and refused
_CHANNEL_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0,
                0xFE: 0, 0xFF: 0}
_REALTIME = {0xF8: Kind.CLOCK, 0xFA: Kind.START, 0xFB: Kind.CONTINUE, 0xFC: Kind.STOP}
SONG_POSITION, SYSEX_START, SYSEX_END = 0xF2, 0xF0, 0xF7
NOTE_OFF, NOTE_ON, CONTROL_CHANGE = 0x80, 0x90, 0xB0

ReportFunction = Callable[[str, str], None]  # (kind, message): "lost", "back", "error"
EventSink = Callable[[MidiEvent], None]
_RTMIDI_ERRORS: tuple[type[Exception], ...] = (rtmidi.RtMidiError, RuntimeError, OSError,
                                               ValueError)


class MidiPortError(BridgeError, OSError):
    """A MIDI port could not be opened or was lost."""


# ---- choosing a backend ---------------------------------------------------------------------

def jack_server_socket() -> Path | None:
    """The socket of the JACK server clients of this process would use (jack2 on Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    server = os.environ.get("JACK_DEFAULT_SERVER") or "default"
    return Path("/dev/shm") / f"jack_{server}_{os.getuid()}_0"


def jack_server_answers() -> bool:
    """Whether a JACK server answers (without ever starting one)."""
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        return False
    socket = jack_server_socket()
    if socket is not None and not socket.exists():
        return False  # asking libjack would only print "cannot connect" noise
    try:
        probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="AccoBridge probe")
    except _RTMIDI_ERRORS:
        return False
    probe.delete()
    return True


def resolve_api(api: str | None = None) -> int:
    """The RtMidi API to use for `api` (or `ACCOBRIDGE_MIDI_API`, or auto)."""
    name = (api or os.environ.get(API_ENV) or "auto").strip().upper()
    if name == "AUTO":
        return rtmidi.API_UNIX_JACK if jack_server_answers() else rtmidi.API_UNSPECIFIED
    if name not in APIS:
        raise ValueError(f"MIDI API {name!r}: expected auto or one of {', '.join(APIS)}")
    if APIS[name] != rtmidi.API_UNSPECIFIED and APIS[name] not in rtmidi.get_compiled_api():
        raise ValueError(f"MIDI API {name} is not compiled into python-rtmidi here")
    return APIS[name]


def supports_virtual_ports(api: int) -> bool:
    if api == rtmidi.API_UNSPECIFIED:
        return not sys.platform.startswith("win")
    return api != rtmidi.API_WINDOWS_MM


def list_ports(api: str | None = None) -> tuple[list[str], list[str]]:
    """(input port names, output port names) the backend sees, for the user to pick from."""
    resolved = resolve_api(api)
    midi_in = midi_out = None
    try:
        midi_in = rtmidi.MidiIn(resolved, name="AccoBridge list")
        midi_out = rtmidi.MidiOut(resolved, name="AccoBridge list")
        return list(midi_in.get_ports()), list(midi_out.get_ports())
    except _RTMIDI_ERRORS as err:
        raise MidiPortError(f"cannot list MIDI ports: {err}") from err
    finally:
        for obj in (midi_in, midi_out):
            if obj is not None:
                obj.delete()


def match_port(names: Sequence[str], wanted: str) -> int | None:
    """Index of the first port whose name contains `wanted`, ignoring case."""
    wanted = wanted.casefold()
    return next((i for i, name in enumerate(names) if wanted in name.casefold()), None)


# ---- decoding ---------------------------------------------------------------------------------

def decode(data: Sequence[int], time_s: float) -> MidiEvent | None:
    """Raw bytes -> MidiEvent; None for messages the bridge does not use. Raises ValueError for
    bytes that are not one valid MIDI message (no status, a data byte over 127, a wrong
    length, an undefined status)."""
    if not data:
        raise ValueError("empty MIDI message")
    status, body = data[0], list(data[1:])
    if status == SYSEX_START:  # a whole system-exclusive message: valid, unused
        if len(body) < 1 or body[-1] != SYSEX_END or any(not 0 <= b <= 127 for b in body[:-1]):
            raise ValueError("system exclusive message without its end (F7) or with bad data")
        return None
    if not 0x80 <= status <= 0xFF:
        raise ValueError(f"MIDI message starts with data byte {status}, not a status")
    if any(not 0 <= b <= 127 for b in body):
        raise ValueError(f"MIDI data bytes must be 0..127, got {body}")
    expected = (_SYSTEM_DATA.get(status) if status >= 0xF0
                else _CHANNEL_DATA[status & 0xF0])
    if expected is None or len(body) != expected:
        raise ValueError(f"status {status:#04x} with {len(body)} data bytes is no MIDI message")
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


# ---- the ports ------------------------------------------------------------------------------

_open_ports: weakref.WeakSet[MidiPorts] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for ports in list(_open_ports):
        ports.close()


class MidiPorts:
    """One input and one output port, a reader/watchdog thread, and `send`.

    Virtual mode (default where supported) creates `in_name`/`out_name`; matching mode
    (Windows, or when `in_match`/`out_match` is given) connects to existing ports whose names
    contain those strings. `start(sink, report)` opens them (a port missing in matching mode
    is waited for, not an error) and starts the thread, which hands each decoded event to
    `sink` and reports ("lost"/"back"/"error", message) through `report`.
    """

    def __init__(
        self, api: str | None = None, *, in_name: str = IN_PORT_NAME,
        out_name: str = OUT_PORT_NAME, in_match: str | None = None,
        out_match: str | None = None, watch_s: float = WATCH_S,
    ) -> None:
        self.api = resolve_api(api)
        self.virtual = in_match is None and out_match is None and supports_virtual_ports(
            self.api)
        self.in_name, self.out_name = in_name, out_name
        self.in_match = in_match or in_name
        self.out_match = out_match or out_name
        self.watch_s = watch_s
        self._lock = threading.RLock()  # guards the RtMidi objects
        self._in: Any = None  # rtmidi.MidiIn (untyped extension objects)
        self._out: Any = None
        self._peers: tuple[str, str] = ("", "")  # matching mode: the port names opened
        self._server_id: tuple[int, int] | None = None  # JACK: the server socket's inode
        self._timestamps = ArrivalTimes()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: EventSink | None = None
        self._report: ReportFunction | None = None
        self.bad_messages = 0
        self.reopened = 0

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._in is not None and self._out is not None

    @property
    def api_name(self) -> str:
        return rtmidi.get_api_name(self.api)

    # ---- opening and closing ------------------------------------------------------------

    def open(self) -> None:
        """Open both ports (closing anything half-open on failure). Raises MidiPortError."""
        with self._lock:
            self._close_ports()
            midi_in = midi_out = None
            opened = False
            try:
                server_id = self._jack_server_id()
                midi_in = rtmidi.MidiIn(self.api, name=self.in_name, queue_size_limit=QUEUE_SIZE)
                midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
                midi_out = rtmidi.MidiOut(self.api, name=self.out_name)
                if self.virtual:
                    midi_in.open_virtual_port(self.in_name)
                    midi_out.open_virtual_port(self.out_name)
                    peers = ("", "")
                else:
                    peers = (self._open_matching(midi_in, self.in_match, self.in_name),
                             self._open_matching(midi_out, self.out_match, self.out_name))
                opened = True
            except MidiPortError:
                raise
            except _RTMIDI_ERRORS as err:
                raise MidiPortError(f"cannot open MIDI ports ({self.api_name}): {err}") from err
            finally:
                if not opened:  # whatever went wrong, no JACK client is left behind
                    for obj in (midi_in, midi_out):
                        if obj is not None:
                            _delete(obj)
            self._in, self._out, self._peers = midi_in, midi_out, peers
            self._server_id = server_id
            self._timestamps = ArrivalTimes()
            _open_ports.add(self)

    @staticmethod
    def _open_matching(obj: Any, wanted: str, local_name: str) -> str:
        names = list(obj.get_ports())
        index = match_port(names, wanted)
        if index is None:
            raise MidiPortError(f"no MIDI port matching {wanted!r} among {names}")
        obj.open_port(index, name=local_name)
        return str(names[index])

    def _jack_server_id(self) -> tuple[int, int] | None:
        if self.api != rtmidi.API_UNIX_JACK:
            return None
        socket = jack_server_socket()
        if socket is None:
            return None
        try:
            stat = socket.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _close_ports(self) -> None:
        with self._lock:
            for obj in (self._in, self._out):
                if obj is not None:
                    _delete(obj)
            self._in = self._out = None

    def close(self) -> None:
        """Stop the thread and close both ports. Idempotent, also from the atexit hook."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._close_ports()
        _open_ports.discard(self)

    # ---- checking -----------------------------------------------------------------------

    def check(self) -> str | None:
        """Why the open ports are no longer usable, or None when they are."""
        with self._lock:
            if self._in is None or self._out is None:
                return "not open"
            if self._server_id is not None and self._jack_server_id() != self._server_id:
                return "the JACK server went away"
            try:
                sources = list(self._in.get_ports())
                destinations = list(self._out.get_ports())
            except _RTMIDI_ERRORS as err:
                return f"cannot list ports: {err}"
        if self.virtual:
            # Our own ports appear in the other direction's listing.
            if match_port(sources, self.out_name) is None:
                return f"port {self.out_name!r} vanished"
            if match_port(destinations, self.in_name) is None:
                return f"port {self.in_name!r} vanished"
            return None
        if self._peers[0] not in sources:
            return f"port {self._peers[0]!r} vanished"
        if self._peers[1] not in destinations:
            return f"port {self._peers[1]!r} vanished"
        return None

    # ---- reading and sending ------------------------------------------------------------

    def poll(self) -> list[MidiEvent]:
        """Everything the input has received since the last poll, decoded (non-blocking)."""
        received: list[tuple[list[int], float]] = []
        with self._lock:
            if self._in is None:
                return []
            while True:
                try:
                    got = self._in.get_message()
                except _RTMIDI_ERRORS:
                    logger.exception("reading MIDI input failed")
                    break
                if got is None:
                    break
                data, delta = got
                received.append((data, self._timestamps.stamp(delta, time.monotonic())))
        events: list[MidiEvent] = []
        for data, time_s in received:
            try:
                event = decode(data, time_s)
            except (ValueError, TypeError) as err:
                self.bad_messages += 1
                logger.warning("bad MIDI message %s ignored (%d so far): %s",
                               bytes(data).hex(" "), self.bad_messages, err)
                continue
            if event is not None:
                events.append(event)
        return events

    def send(self, data: Sequence[int]) -> bool:
        """Send one raw message now; False (nothing sent) while the output is down."""
        with self._lock:
            if self._out is None:
                return False
            try:
                self._out.send_message(list(data))
            except _RTMIDI_ERRORS as err:
                logger.warning("MIDI send failed: %s", err)
                return False
            return True

    # ---- the reader / watchdog thread ---------------------------------------------------

    def start(self, sink: EventSink, report: ReportFunction | None = None) -> None:
        """Open the ports and start the thread. In virtual mode a failure to open raises
        MidiPortError; in matching mode missing ports are reported and waited for."""
        self._sink, self._report = sink, report
        try:
            self.open()
        except MidiPortError as err:
            if self.virtual:
                raise
            self._say("lost", str(err))
        _open_ports.add(self)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="accobridge-midi-in",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sink = self._sink
        assert sink is not None
        next_check = time.monotonic() + self.watch_s
        while not self._stop.is_set():
            for event in self.poll():
                sink(event)
            if time.monotonic() >= next_check:
                self._watch()
                next_check = time.monotonic() + self.watch_s
            self._stop.wait(POLL_S)

    def _watch(self) -> None:
        if self.is_open:
            reason = self.check()
            if reason is None:
                return
            self._close_ports()
            self._say("lost", f"MIDI ports lost: {reason}")
        socket = jack_server_socket() if self.api == rtmidi.API_UNIX_JACK else None
        if socket is not None and not socket.exists():
            return  # no JACK server (yet): asking libjack would only print noise
        try:
            self.open()
        except MidiPortError as err:
            logger.debug("MIDI ports not back yet: %s", err)
            return
        self.reopened += 1
        self._say("back", f"MIDI ports open again ({self.api_name})")

    def _say(self, kind: str, message: str) -> None:
        if self._report is None:
            (logger.info if kind == "back" else logger.warning)("%s", message)
            return
        try:
            self._report(kind, message)
        except Exception:
            logger.exception("MIDI port report callback raised")


def _delete(obj: Any) -> None:
    """Close and free one RtMidi object (its JACK client with it), whatever state it is in."""
    try:
        obj.close_port()
    except _RTMIDI_ERRORS:
        logger.debug("close_port failed", exc_info=True)
    try:
        obj.delete()
    except _RTMIDI_ERRORS:
        logger.debug("delete failed", exc_info=True)
