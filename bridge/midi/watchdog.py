"""The reader and the watchdog of a pair of MIDI ports, whatever the backend (`MidiPorts` fills
in the hooks with python-rtmidi). The reader polls the input every POLL_S and hands each event
to the sink (the reader only decodes and delivers); the watchdog checks the ports every
`watch_s`, reports ("lost"/"back"/"error", message) and opens ports that vanished or could not
be opened yet. Each catches every Exception (counted in `tally`, logged rate-limited) and
restarts the other should it ever stop (only a BaseException such as SystemExit can stop one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge.midi.clock import MidiEvent
from bridge.midi.errors import MidiPortError
from bridge.tally import Tally

logger = logging.getLogger("bridge.midi.ports")  # the ports' part: its lines say so

POLL_S = 0.001  # input poll period: adds at most this to processing latency, not to timestamps

ReportFunction = Callable[[str, str], None]  # (kind, message): "lost", "back", "error"
EventSink = Callable[[MidiEvent], None]


class WatchedPorts:
    """A pair of ports with a reader and a watchdog thread. A backend fills in `open`,
    `_close_ports`, `check`, `poll`, `_ready_to_open`, `is_open` and `api_name`;
    `_started` runs once `start` has tried to open them."""

    def __init__(self, watch_s: float, tally: Tally) -> None:
        self.watch_s = watch_s
        self.tally = tally
        self._stop = threading.Event()
        self._threads_lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}  # "reader", "watchdog"
        self._sink: EventSink | None = None
        self._report: ReportFunction | None = None
        self.opened = 0  # times the ports were opened
        self.reopened = 0  # of those, by the watchdog

    # ---- the backend's hooks ------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    @property
    def api_name(self) -> str:
        raise NotImplementedError

    def open(self) -> None:
        """Open both ports (counting `opened`); raises MidiPortError."""
        raise NotImplementedError

    def _close_ports(self) -> None:
        raise NotImplementedError

    def check(self) -> str | None:
        """Why the open ports are no longer usable, or None when they are."""
        raise NotImplementedError

    def poll(self) -> list[MidiEvent]:
        """Everything the input has received since the last poll, decoded (non-blocking)."""
        raise NotImplementedError

    def _ready_to_open(self) -> bool:
        """Whether opening could succeed now (trying otherwise only prints noise)."""
        raise NotImplementedError

    def _started(self) -> None:
        """Called by `start` after its first try at opening the ports."""

    def _stop_threads(self) -> None:
        """Stop the reader and the watchdog and join them (not from themselves)."""
        self._stop.set()
        with self._threads_lock:
            threads = list(self._threads.values())
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(5.0)

    # ---- the reader and the watchdog ----------------------------------------------------

    def start(self, sink: EventSink, report: ReportFunction | None = None) -> None:
        """Open the ports and start the reader and the watchdog. Ports that cannot be opened
        now are reported ("lost") and opened by the watchdog as soon as they can ("back")."""
        self._sink, self._report = sink, report
        try:
            self.open()
        except MidiPortError as err:
            self._say("lost", f"MIDI ports not open yet, waiting for them: {err}")
        self._started()
        self._stop.clear()
        with self._threads_lock:
            for role in ("reader", "watchdog"):
                self._start_thread(role)

    def _start_thread(self, role: str) -> None:
        """Start the reader or the watchdog; the caller holds `_threads_lock`."""
        target = self._read if role == "reader" else self._guard
        thread = threading.Thread(target=target, name=f"accobridge-midi-{role}", daemon=True)
        self._threads[role] = thread
        thread.start()

    def _revive(self, role: str) -> None:
        """Start `role`'s thread again if it stopped. Each loop catches every Exception, so
        only a BaseException (SystemExit from a callback…) stops one, and then silently."""
        with self._threads_lock:
            thread = self._threads.get(role)
            if thread is None or thread.is_alive() or self._stop.is_set():
                return
            self.tally.count(f"restarted_{role}")
            self._start_thread(role)
        self._say("error", f"the MIDI {role} thread had stopped; started it again")

    def _read(self) -> None:
        next_check = time.monotonic() + self.watch_s
        while not self._stop.is_set():
            try:
                self._deliver(self.poll())
                if time.monotonic() >= next_check:
                    self._revive("watchdog")
                    next_check = time.monotonic() + self.watch_s
            except Exception:
                if self.tally.refuse("failed", "reader", "MIDI input", "the reader raised"):
                    logger.exception("the MIDI reader failed")
            self._stop.wait(POLL_S)

    def _deliver(self, events: list[MidiEvent]) -> None:
        sink = self._sink
        assert sink is not None
        for event in events:
            try:
                sink(event)
            except Exception as err:
                if self.tally.refuse("failed", "sink", f"{event.kind} event",
                                     f"{type(err).__name__}: {err}"):
                    logger.exception("the MIDI event sink raised")

    def _guard(self) -> None:
        while not self._stop.wait(self.watch_s):
            try:
                self._revive("reader")
                self._watch()
            except Exception:
                if self.tally.refuse("failed", "watchdog", "MIDI ports", "the watchdog raised"):
                    logger.exception("watching the MIDI ports failed")

    def _watch(self) -> None:
        if self.is_open:
            reason = self.check()
            if reason is None:
                return
            self._close_ports()
            self._say("lost", f"MIDI ports lost: {reason}")
        if not self._ready_to_open():
            return  # nothing to open on (yet): trying would only print noise, or get stuck
        again = self.opened > 0
        try:
            self.open()
        except MidiPortError as err:
            logger.debug("MIDI ports not open yet: %s", err)
            return
        self.reopened += 1
        self._say("back", f"MIDI ports open{' again' if again else ''} ({self.api_name})")

    def _say(self, kind: str, message: str) -> None:
        if self._report is None:
            (logger.info if kind == "back" else logger.warning)("%s", message)
            return
        try:
            self._report(kind, message)
        except Exception:
            logger.exception("MIDI port report callback raised")
