"""`MidiAdapter`: the virtual-port path between a DAW and the session. The DAW plays (or sends)
a melody with its clock into "AccoBridge In"; each take goes to the session when it ends; the
result streams out of "AccoBridge Out" (chords channel 2, piano channel 3 with its sustain
pedal, CC 64) in place — at the take's song position — whenever the DAW's transport plays
through it.

Threads: the ports' reader only decodes and enqueues; one dispatch thread feeds the clock
follower and the capture and submits takes; the session's worker hands results to the sender
thread. `close()` (call it on SIGINT/SIGTERM) silences the output and closes the ports.

While an adapter is open the interpreter's GIL switch interval is at most 1 ms (see
`GIL_SWITCH_S`): at CPython's default 5 ms, a busy thread (the engine, a spinning one) keeps a
waking sender thread waiting for up to 5 ms, which alone breaks the 2 ms jitter goal.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import queue
import secrets
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from bridge.adapter import (
    ErrorEvent,
    ResultEvent,
    SessionLike,
    StatusEvent,
    call_guarded,
    read_event,
    submit_clip,
)
from bridge.errors import BridgeError
from bridge.midi.capture import SOURCE, EndOn, MelodyCapture, Take
from bridge.midi.clock import ClockFollower, MidiEvent
from bridge.midi.ports import IN_PORT_NAME, OUT_PORT_NAME, WATCH_S, MidiPorts
from bridge.midi.sender import SPIN_S, Sender, schedule_parts
from bridge.midi.watchdog import ReportFunction

logger = logging.getLogger(__name__)

GIL_SWITCH_S = 0.001  # measured: 5 ms (the default) gives 2-6 ms sender outliers, 1 ms none
_open_adapters: weakref.WeakSet[MidiAdapter] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """A last resort at interpreter exit (SIGINT/SIGTERM handlers should call `close()`):
    silence the output and close the ports."""
    for adapter in list(_open_adapters):
        adapter.close()


class MidiAdapter:
    """Wires ports + clock follower + capture + sender to `session`.

    `end_on`: "stop", "loop", "cc:NN" or "bars:N" (see `bridge.midi.capture`). `ts_num`/`ts_den`:
    the meter takes are captured in (MIDI clock carries none; `set_meter` changes it from the
    next take). `api`: see
    `bridge.midi.ports` (default: `ACCOBRIDGE_MIDI_API`, else auto). `on_report(kind, message)`
    hears about ports ("lost", "back"), takes ("take"), results ("result") and failures
    ("error"), on the reporting thread: keep it short, as callbacks should be.
    `gil_switch_s`: the GIL switch interval to hold while open (None: leave it alone).
    `spin_s`: see `bridge.midi.sender.Sender`.
    """

    def __init__(
        self, session: SessionLike, api: str | None = None, end_on: str = "stop", *,
        options: Mapping[str, Any] | None = None, ts_num: int = 4, ts_den: int = 4,
        channel: int | None = 1, in_name: str = IN_PORT_NAME, out_name: str = OUT_PORT_NAME,
        in_match: str | None = None, out_match: str | None = None,
        on_report: ReportFunction | None = None, watch_s: float = WATCH_S,
        gil_switch_s: float | None = GIL_SWITCH_S, spin_s: float = SPIN_S,
    ) -> None:
        self._session = session
        self._options = dict(options or {})
        self._on_report = on_report
        # Checked before anything opens: a bad setting is a ValueError with nothing to clean.
        self._capture = MelodyCapture(EndOn.parse(end_on), ts_num=ts_num, ts_den=ts_den,
                                      channel=channel)
        self._follower = ClockFollower(self._capture.bar_beats)
        self._events: queue.SimpleQueue[MidiEvent | None] = queue.SimpleQueue()
        self._ids = (f"midi-{secrets.token_hex(3)}-{n}" for n in itertools.count(1))
        self._lock = threading.Lock()
        self._latest: str | None = None
        self._origins: dict[str, float] = {}
        self._closed = False
        self._ports = MidiPorts(api, in_name=in_name, out_name=out_name, in_match=in_match,
                                out_match=out_match, watch_s=watch_s)
        self._saved_switch: float | None = None
        if gil_switch_s is not None and sys.getswitchinterval() > gil_switch_s:
            self._saved_switch = sys.getswitchinterval()
            sys.setswitchinterval(gil_switch_s)
        self._set_switch = sys.getswitchinterval()
        self._sender = Sender(self._ports.send, spin_s=spin_s)
        self._thread = threading.Thread(target=self._dispatch, name="accobridge-midi",
                                        daemon=True)
        self._thread.start()
        _open_adapters.add(self)
        try:
            self._ports.start(self._events.put, self._report)
        except BaseException:
            self.close()
            raise

    @property
    def ports(self) -> MidiPorts:
        return self._ports

    @property
    def sender(self) -> Sender:
        return self._sender

    @property
    def tempo_bpm(self) -> float | None:
        return self._follower.tempo_bpm

    @property
    def lost_ticks(self) -> int:
        """Clock ticks inferred lost on the way (JACK xruns), net."""
        return self._follower.lost_ticks

    def set_meter(self, ts_num: int, ts_den: int) -> None:
        """Capture the takes that start from now on in `ts_num`/`ts_den` (ValueError if it is
        not a meter). Any thread."""
        self._capture.set_meter(ts_num, ts_den)

    def close(self) -> None:
        """Stop capturing, send note-offs and all-notes-off, close the ports. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._events.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._sender.close()
        self._ports.close()
        _open_adapters.discard(self)
        # Put the interval back unless someone changed it since, or another adapter needs it.
        if (self._saved_switch is not None and not _open_adapters
                and sys.getswitchinterval() == self._set_switch):
            sys.setswitchinterval(self._saved_switch)

    # ---- dispatch thread ----------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            try:
                self._handle(event)
            except Exception:
                logger.exception("MIDI event %r could not be handled", event)

    def _handle(self, event: MidiEvent) -> None:
        if self._follower.handle(event):
            self._sender.set_clock(self._follower.snapshot())
        take = self._capture.handle(event, self._follower)
        self._follower.bar_beats = self._capture.bar_beats  # the take's meter sets the anchors
        if take is not None:
            self._submit(take)

    def _submit(self, take: Take) -> None:
        request_id = next(self._ids)
        with self._lock:
            self._latest = request_id
            self._origins = {request_id: take.origin_beats}  # older ones are superseded
        clip = take.clip
        self._report("take", f"{request_id}: {clip.name}, {len(clip.notes)} notes, "
                             f"{clip.length_beats:g} beats at {clip.tempo_bpm:g} bpm")
        try:
            submit_clip(self._session, SOURCE, request_id, clip, self._options,
                        functools.partial(self._on_session_event, request_id))
        except (RuntimeError, BridgeError) as err:  # the session is closed, or a bad take
            self._report("error", f"{request_id} not submitted: {err}")

    # ---- session worker -----------------------------------------------------------------

    def _on_session_event(self, request_id: str, kind: str, payload: object) -> None:
        news = read_event(kind, payload)
        if isinstance(news, ResultEvent):
            with self._lock:
                origin = self._origins.get(request_id)
                current = request_id == self._latest and not self._closed
            if not current or origin is None:
                logger.debug("dropping stale MIDI result %s", request_id)
                return
            result = news.result
            self._sender.play(schedule_parts(result.parts, origin, result.controls))
            notes = sum(len(notes) for part, notes in result.parts.items() if part != "melody")
            changes = sum(len(changes) for changes in result.controls.values())
            self._report("result", f"{request_id}: {notes} notes and {changes} control "
                                   f"changes scheduled from beat {origin:g}")
        elif isinstance(news, ErrorEvent):
            self._report("error", f"{request_id}: {payload}")
        elif isinstance(news, StatusEvent):
            logger.debug("MIDI request %s: %s", request_id, payload)

    def _report(self, kind: str, message: str) -> None:
        if kind in ("lost", "error"):
            logger.warning("%s", message)
        else:
            logger.info("%s", message)
        call_guarded(logger, "MIDI on_report callback", self._on_report, kind, message)
