"""The bridge's one door to MIDI hardware and virtual ports: the only module importing
python-rtmidi; the wire bytes are decoded by `bridge.midi.wire` (mido is engine.midi_io's, for
files). Opens "AccoBridge In" / "AccoBridge Out", reads (on its own thread, which only decodes
and enqueues), sends, and watches the ports on a thread of its own (both threads:
`bridge.midi.watchdog`): one that vanishes, or that could not be opened yet because JACK (or
the OS MIDI service) was not running, is reported and opened when it can be.

Input that cannot die: every message that is not valid MIDI, every exception from the sink and
every time RtMidi's input queue was found full is counted by reason in `MidiPorts.tally` and
logged rate-limited; the reader keeps reading. The reader and the watchdog each restart the
other should it ever stop (only a BaseException such as SystemExit can stop one).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rtmidi

from bridge.errors import BadMessageError
from bridge.midi.clock import MidiEvent
from bridge.midi.errors import MidiPortError
from bridge.midi.watchdog import WatchedPorts
from bridge.midi.wire import ArrivalTimes, decode, shown
from bridge.tally import Tally

logger = logging.getLogger(__name__)

API_ENV = "ACCOBRIDGE_MIDI_API"
IN_PORT_NAME = "AccoBridge In"
OUT_PORT_NAME = "AccoBridge Out"
WATCH_S = 0.5  # how often the watchdog checks the ports (and retries opening them)
QUEUE_SIZE = 4096  # RtMidi's input queue, in messages (it holds one less)
ALSA_SEQUENCER = Path("/dev/snd/seq")  # absent: no ALSA MIDI service on this machine
# The watchdog leaves a JACK server that started less than this ago alone: clients that open
# while jackd starts up and others connect can stay "not finished" for good, stalling the whole
# graph (8 of 25 openings on the dummy backend, 0 of 25 after waiting this long).
JACK_SETTLE_S = 1.0

APIS: dict[str, int] = {
    "UNIX_JACK": rtmidi.API_UNIX_JACK,
    "LINUX_ALSA": rtmidi.API_LINUX_ALSA,
    "MACOSX_CORE": rtmidi.API_MACOSX_CORE,
    "WINDOWS_MM": rtmidi.API_WINDOWS_MM,
    "UNSPECIFIED": rtmidi.API_UNSPECIFIED,
}

_RTMIDI_ERRORS: tuple[type[Exception], ...] = (rtmidi.RtMidiError, RuntimeError, OSError,
                                               ValueError)


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


def api_choice(api: str | None = None) -> str:
    """The backend asked for: `api`, else `ACCOBRIDGE_MIDI_API`, else "AUTO" (upper case)."""
    return (api or os.environ.get(API_ENV) or "auto").strip().upper()


def resolve_api(api: str | None = None) -> int:
    """The RtMidi API to use for `api` (or `ACCOBRIDGE_MIDI_API`, or auto)."""
    name = api_choice(api)
    if name == "AUTO":
        return rtmidi.API_UNIX_JACK if jack_server_answers() else rtmidi.API_UNSPECIFIED
    if name not in APIS:
        raise ValueError(f"MIDI API {name!r}: expected auto or one of {', '.join(APIS)}")
    if APIS[name] != rtmidi.API_UNSPECIFIED and APIS[name] not in rtmidi.get_compiled_api():
        raise ValueError(f"MIDI API {name} is not compiled into python-rtmidi here")
    return APIS[name]


def service_absent(api: int) -> bool:
    """Whether `api`'s MIDI service is certainly not running here, so that opening it would
    only fail and print noise: JACK without its server socket, ALSA without its sequencer
    device (RtMidi tries ALSA first for API_UNSPECIFIED on Linux). False where unknown."""
    if not sys.platform.startswith("linux"):
        return False
    if api == rtmidi.API_UNIX_JACK:
        socket = jack_server_socket()
        return socket is not None and not socket.exists()
    if api in (rtmidi.API_LINUX_ALSA, rtmidi.API_UNSPECIFIED):
        return not ALSA_SEQUENCER.exists()
    return False


def jack_uptime_s() -> float | None:
    """Seconds since this process's JACK server started (made its socket); None when none
    runs, or where unknown."""
    socket = jack_server_socket()
    if socket is None:
        return None
    try:
        return time.time() - socket.stat().st_mtime
    except OSError:
        return None


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


# ---- the ports ------------------------------------------------------------------------------

_open_ports: weakref.WeakSet[MidiPorts | MidiOutput] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for ports in list(_open_ports):
        ports.close()


class MidiPorts(WatchedPorts):
    """One input and one output port, a reader and a watchdog thread, and `send`.

    Virtual mode (default where supported) creates `in_name`/`out_name`; matching mode
    (Windows, or when `in_match`/`out_match` is given) connects to existing ports whose names
    contain those strings. `start(sink, report)` opens them and starts the threads: the reader
    hands each decoded event to `sink`; the watchdog reports ("lost"/"back"/"error", message)
    through `report` and opens ports that vanished or could not be opened yet (no JACK server
    or MIDI service, a missing port in matching mode). With the backend on auto, each opening
    chooses it again: ports opened while JACK was not running come up on JACK once it is.

    `tally` counts (`stats()`): received; bad and bad_<reason> (see `decode`);
    lost_queue_full: polls that found RtMidi's input queue full, so that at least one message
    was lost (RtMidi prints each loss to stderr and reports none to its error callback, so
    the number lost is not known); failed_<sink|reader|read|watchdog>: exceptions caught
    there; restarted_<reader|watchdog>.
    """

    def __init__(
        self, api: str | None = None, *, in_name: str = IN_PORT_NAME,
        out_name: str = OUT_PORT_NAME, in_match: str | None = None,
        out_match: str | None = None, watch_s: float = WATCH_S, queue_size: int = QUEUE_SIZE,
    ) -> None:
        super().__init__(watch_s, Tally("midi-in", logger, noun="messages"))
        self._auto = api_choice(api) == "AUTO"
        self.api = resolve_api(api)
        self._matching = in_match is not None or out_match is not None
        self.in_name, self.out_name = in_name, out_name
        self.in_match = in_match or in_name
        self.out_match = out_match or out_name
        self.queue_size = queue_size
        self._lock = threading.RLock()  # guards the RtMidi objects
        self._in: Any = None  # rtmidi.MidiIn (untyped extension objects)
        self._out: Any = None
        self._peers: tuple[str, str] = ("", "")  # matching mode: the port names opened
        self._server_id: tuple[int, int] | None = None  # JACK: the server socket's inode
        self._timestamps = ArrivalTimes()
        for key in ("received", "bad", "lost", "failed"):
            self.tally.count(key, 0)

    @property
    def virtual(self) -> bool:
        return not self._matching and supports_virtual_ports(self.api)

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._in is not None and self._out is not None

    @property
    def api_name(self) -> str:
        return rtmidi.get_api_name(self.api)

    def stats(self) -> dict[str, int]:
        return self.tally.snapshot()

    # ---- opening and closing ------------------------------------------------------------

    def open(self) -> None:
        """Open both ports (closing anything half-open on failure). Raises MidiPortError."""
        with self._lock:
            self._close_ports()
            if self._auto:
                self.api = resolve_api("auto")
            midi_in = midi_out = None
            opened = False
            try:
                server_id = self._jack_server_id()
                midi_in = rtmidi.MidiIn(self.api, name=self.in_name,
                                        queue_size_limit=self.queue_size)
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
            self.opened += 1
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

    def _ready_to_open(self) -> bool:
        """Whether a backend these ports could open on runs (see `service_absent`) and, if
        it is JACK, has settled (`JACK_SETTLE_S`)."""
        if self._auto:
            if (service_absent(rtmidi.API_UNIX_JACK)
                    and service_absent(rtmidi.API_UNSPECIFIED)):
                return False
        elif service_absent(self.api):
            return False
        uptime = jack_uptime_s() if self._auto or self.api == rtmidi.API_UNIX_JACK else None
        return uptime is None or not 0.0 <= uptime < JACK_SETTLE_S

    def _close_ports(self) -> None:
        with self._lock:
            for obj in (self._in, self._out):
                if obj is not None:
                    _delete(obj)
            self._in = self._out = None

    def close(self) -> None:
        """Stop the threads and close both ports. Idempotent, also from the atexit hook."""
        self._stop_threads()
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
        """Everything the input has received since the last poll, decoded (non-blocking).
        Bad messages are counted, logged (rate-limited) and left out."""
        received: list[tuple[list[int], float]] = []
        with self._lock:
            if self._in is None:
                return []
            while True:
                try:
                    got = self._in.get_message()
                except _RTMIDI_ERRORS as err:
                    self.tally.refuse("failed", "read", "MIDI input", str(err))
                    break
                if got is None:
                    break
                data, delta = got
                received.append((data, self._timestamps.stamp(delta, time.monotonic())))
        if not received:
            return []
        self.tally.count("received", len(received))
        if len(received) >= self.queue_size - 1:  # RtMidi's ring holds queue_size - 1
            self.tally.refuse("lost", "queue_full", f"input queue of {self.queue_size}",
                              "full when read: messages that arrived meanwhile were lost")
        events: list[MidiEvent] = []
        for data, time_s in received:
            try:
                event = decode(data, time_s)
            except BadMessageError as err:
                self.tally.refuse("bad", err.reason, f"message {shown(data)}", str(err))
                continue
            except Exception:  # a decoder bug must not stop the input either
                if self.tally.refuse("bad", "internal", f"message {shown(data)}",
                                     "the decoder raised"):
                    logger.exception("decoding MIDI message %s failed", shown(data))
                continue
            if event is not None:
                events.append(event)
        return events

    def send(self, data: Sequence[int]) -> bool:
        """Send one raw message now; False (nothing sent) while the output is down."""
        with self._lock:
            return self._out is not None and _send(self._out, data, self.out_name)

    def _started(self) -> None:
        _open_ports.add(self)  # its threads run: stopped at exit even while no port is open


AUDITION_NAME = "AccoBridge Audition"


def output_names(api: str | None = None) -> list[str]:
    """The output ports a player could send to (synths, DAW inputs), the bridge's own left
    out (sending into "AccoBridge In" would record the audition as a take); [] where no MIDI
    service runs."""
    if service_absent(resolve_api(api)):
        return []
    return [name for name in list_ports(api)[1] if "accobridge" not in name.casefold()]


class MidiOutput:
    """One output into an existing port whose name contains `match` (a synth, a DAW's MIDI
    input), for the panel's audition. `send` may be called from any thread; closed on every
    path, at interpreter exit too (trap 2)."""

    def __init__(self, match: str, api: str | None = None, *, name: str = AUDITION_NAME) -> None:
        self.api = resolve_api(api)
        self._lock = threading.Lock()
        out: Any = None
        opened = False
        try:
            out = rtmidi.MidiOut(self.api, name=name)
            self.port_name = MidiPorts._open_matching(out, match, name)
            opened = True
        except MidiPortError:
            raise
        except _RTMIDI_ERRORS as err:
            raise MidiPortError(f"cannot open MIDI output {match!r}: {err}") from err
        finally:
            if not opened and out is not None:  # no JACK client left behind
                _delete(out)
        self._out: Any = out
        _open_ports.add(self)

    def send(self, data: Sequence[int]) -> bool:
        """Send one raw message now; False once closed or when the backend refused it."""
        with self._lock:
            return self._out is not None and _send(self._out, data, self.port_name)

    def close(self) -> None:
        """Idempotent."""
        with self._lock:
            out, self._out = self._out, None
        if out is not None:
            _delete(out)
        _open_ports.discard(self)


def _send(out: Any, data: Sequence[int], port: str) -> bool:
    """One raw message out of an open RtMidi output; False (logged) when the backend refused
    it."""
    try:
        out.send_message(list(data))
    except _RTMIDI_ERRORS as err:
        logger.warning("MIDI send to %s failed: %s", port, err)
        return False
    return True


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
