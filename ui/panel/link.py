"""The panel's one door to the engine and the DAWs: the bridge session (the single engine
worker, latest request per source wins), the adapters, and Qt signals back to the GUI thread.

Threads (Picard's model): the session's worker runs the engine; adapters run their own threads;
everything reaches the GUI only as queued Qt signals emitted from those threads. Nothing here
blocks the GUI thread except the small atomic file write of `Session.submit`.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from bridge.adapter import EventCallback, call_guarded
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip
from ui.panel.jobs import PANEL_REQUEST, PANEL_SOURCE, PanelEngine, PanelRequest
from ui.services import BridgeServices, ConnectionStatus, ServiceConfig

logger = logging.getLogger(__name__)

ENDINGS = ("done", "failed", "superseded", "cancelled")
# The GIL switch interval while the panel is open. A thread waiting for the GIL asks the
# holder to drop it only after waiting this long without any switch, and every brief release
# by the engine (C calls such as numpy's, file writes) wakes the waiter and restarts it: at
# 1 ms the GUI thread waited 30-50 ms for its next slot while the engine ran (benchmarks/
# panel_latency.py: max 33-55 ms at 1 ms, 22-30 ms at 50 us, the engine's throughput alike).
GIL_SWITCH_S = 0.00005


@dataclass(frozen=True)
class _Pending:
    source: str
    request_id: str
    clip: Clip
    options: Mapping[str, Any]
    on_event: EventCallback
    due: float


class DawGate:
    """What the adapters see as their session: DAW clips wait `debounce_s` (a newer clip from
    the same source in that time replaces it: latest wins), then go to the real session with the
    panel's preset unless the client chose its own options. In manual mode (live off) clips are
    only shown; the DAW gets an answer when the user sends one.

    `submit` runs on adapter threads; superseded notices and forwarding run on the gate's own
    thread, never on the caller's (an adapter may hold its lock while submitting).
    """

    def __init__(self, link: EngineLink, debounce_s: float) -> None:
        self._link = link
        self.debounce_s = debounce_s
        self.live = True
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._notices: list[tuple[EventCallback, str, object]] = []
        self._direct: list[_Pending] = []  # panel requests: forwarded as they come, in order
        self._last: dict[str, tuple[str, Clip, EventCallback]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="accobridge-daw-gate",
                                        daemon=True)
        self._thread.start()

    # -- the session protocol (adapter threads) --

    def submit(self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
               on_event: EventCallback) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the panel is closing")
            self._last[source] = (request_id, clip, on_event)
            if not self.live:
                self._notices.append((on_event, "status", (
                    "queued", 0.0, "waiting: press Send to DAW in the AccoBridge panel")))
            else:
                replaced = self._pending.pop(source, None)
                if replaced is not None:
                    self._notices.append((replaced.on_event, "status", (
                        "superseded", 0.0, f"superseded by {request_id}")))
                self._pending[source] = _Pending(source, request_id, clip, dict(options),
                                                 on_event, time.monotonic() + self.debounce_s)
            self._cond.notify()
        self._link.clip_arrived.emit(source, clip)

    def cancel(self, request_id: str) -> object:
        with self._cond:
            for source, job in list(self._pending.items()):
                if job.request_id == request_id:
                    del self._pending[source]
                    self._notices.append((job.on_event, "status",
                                          ("cancelled", 0.0, "cancelled")))
                    self._cond.notify()
                    return True
        return self._link.session.cancel(request_id)

    def queue_length(self) -> int:
        with self._cond:
            waiting = len(self._pending)
        return waiting + self._link.session.queue_length()

    # -- the panel (GUI thread) --

    def forward(self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
                on_event: EventCallback) -> None:
        """Hand a request to the session from the gate's thread, in call order: the session's
        submit writes the clip to disk (fsync), which the GUI thread must not wait for."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the panel is closing")
            self._direct.append(_Pending(source, request_id, clip, options, on_event, 0.0))
            self._cond.notify()

    def last_request(self, source: str) -> tuple[str, Clip, EventCallback] | None:
        with self._cond:
            return self._last.get(source)

    def daw_sources(self) -> list[str]:
        with self._cond:
            return list(self._last)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(2.0)

    # -- the gate's thread --

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if self._notices or self._direct:
                        notices, self._notices = self._notices, []
                        direct, self._direct = self._direct, []
                        due = []
                        break
                    now = time.monotonic()
                    due = [p for p in self._pending.values() if p.due <= now]
                    if due:
                        for job in due:
                            del self._pending[job.source]
                        notices, direct = [], []
                        break
                    wait = min((p.due - now for p in self._pending.values()), default=None)
                    self._cond.wait(wait)
            for on_event, kind, payload in notices:
                _safe_call(on_event, kind, payload)
            for job in direct:
                self._submit(job, job.options)
            for job in due:
                self._forward(job)

    def _forward(self, job: _Pending) -> None:
        options: Mapping[str, Any] = job.options
        client_chose = {k for k in job.options if k != "parts"}
        replay = job.options.get(PANEL_REQUEST)
        if isinstance(replay, PanelRequest) and replay.clip_notes != job.clip.notes:
            # a "send" the adapter kept as its options: stale once the clip changed
            client_chose = set()
        if not client_chose:
            request = self._link.daw_request()
            if "parts" in job.options:
                parts = tuple(job.options["parts"])
                request = PanelRequest(request.action, request.options, parts=parts)
            options = {PANEL_REQUEST: request}
        self._submit(job, options, watch=True)

    def _submit(self, job: _Pending, options: Mapping[str, Any], watch: bool = False) -> None:
        on_event = self._link.watch(job.source, job.request_id, job.on_event) if watch \
            else job.on_event
        try:
            self._link.session.submit(job.source, job.request_id, job.clip, options, on_event)
        except RuntimeError as err:  # the session closed meanwhile
            _safe_call(on_event, "status", ("cancelled", 0.0, str(err)))
        except Exception:  # never let one request stop the gate
            logger.exception("submitting %s failed", job.request_id)


def _safe_call(on_event: EventCallback, kind: str, payload: object) -> None:
    call_guarded(logger, f"an adapter's on_event on {kind!r}", on_event, kind, payload)


class EngineLink(QObject):
    """Owns the session, the DAW gate and the adapters; reports to the GUI by signals.

    Signals (always delivered on the GUI thread, as queued connections):
    `outcome(PanelOutcome)`, `status(source, request_id, state, progress, message)`,
    `failed(source, request_id, code, message)`, `clip_arrived(source, Clip)`,
    `connections_changed()`, `adapter_event(adapter, kind, message)`.
    """

    outcome = pyqtSignal(object)
    status = pyqtSignal(str, str, str, float, str)
    failed = pyqtSignal(str, str, int, str)
    clip_arrived = pyqtSignal(str, object)
    connections_changed = pyqtSignal()
    adapter_event = pyqtSignal(str, str, str)

    def __init__(self, store: ClipStore | None = None, debounce_s: float = 0.15,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        # The GUI thread must not wait long for the GIL while the engine computes: 50 us
        # switches (see GIL_SWITCH_S) instead of 5 ms; put back on close.
        self._saved_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._saved_switch, GIL_SWITCH_S))
        self.engine = PanelEngine()
        self.session = Session(self.engine, store)
        self.gate = DawGate(self, debounce_s)
        self.services: BridgeServices | None = None
        self._ids = itertools.count(1)
        # Set by the GUI thread, read on the gate's thread: a frozen value, swapped whole.
        self._daw_request: PanelRequest | None = None
        self.adapter_event.connect(lambda *_: self.connections_changed.emit())

    @property
    def store(self) -> ClipStore:
        return self.session.store

    def set_daw_request(self, request: PanelRequest) -> None:
        """What a DAW clip without options of its own is generated with (the preset)."""
        self._daw_request = request

    def daw_request(self) -> PanelRequest:
        request = self._daw_request
        if request is None:
            from engine import ArrangeOptions

            request = PanelRequest("generate", ArrangeOptions())
        return request

    # -- requests --

    def new_request_id(self) -> str:
        return f"{PANEL_SOURCE}-{next(self._ids)}"

    def submit(self, clip: Clip, request: PanelRequest) -> str:
        """Queue a panel request (source "panel": a newer one supersedes it). Returns its id."""
        request_id = self.new_request_id()
        self.gate.forward(PANEL_SOURCE, request_id, clip, {PANEL_REQUEST: request},
                          self.watch(PANEL_SOURCE, request_id, None))
        return request_id

    def send_to_daw(self, source: str, request: PanelRequest) -> bool:
        """Answer the DAW's last request from `source` with `request` (a "replay" of what the
        panel shows) through that adapter's own result path. False when `source` never sent."""
        last = self.gate.last_request(source)
        if last is None:
            return False
        request_id, clip, on_event = last
        ableton = self.services.ableton if self.services is not None else None
        if source == "ableton" and ableton is not None and self.gate.live:
            # Live's adapter has written (and forgotten) that request: ask it to read the
            # selected clip again with this answer attached (a changed clip is generated anew)
            threading.Thread(target=self._send_to_ableton, args=(ableton, request),
                             name="accobridge-send-ableton", daemon=True).start()
            return True
        self.gate.forward(source, request_id, clip, {PANEL_REQUEST: request},
                          self.watch(source, request_id, on_event))
        return True

    def _send_to_ableton(self, adapter: Any, request: PanelRequest) -> None:
        try:
            adapter.generate_now({PANEL_REQUEST: request})
        except Exception as err:  # Live gone, clip deselected …
            logger.warning("ableton: could not send: %s", err)
            self.failed.emit("ableton", "", 4, f"could not send to Live: {err}")

    def watch(self, source: str, request_id: str,
              forward: EventCallback | None) -> EventCallback:
        """The session event callback for one request (runs on the session's worker)."""

        def on_event(kind: str, payload: object) -> None:
            if kind == "result":
                outcome = self.engine.take(request_id)
                if outcome is not None:
                    self.outcome.emit(outcome)
            elif kind == "error" and isinstance(payload, tuple) and len(payload) == 2:
                self.failed.emit(source, request_id, int(payload[0]), str(payload[1]))
            elif kind == "status" and isinstance(payload, tuple) and len(payload) == 3:
                state, progress, message = payload
                if state in ENDINGS and state != "done":
                    self.engine.forget(request_id)
                self.status.emit(source, request_id, str(state), float(progress), str(message))
            if forward is not None:
                forward(kind, payload)

        return on_event

    # -- adapters --

    def start_services(self, config: ServiceConfig, live: bool) -> None:
        """(Re)start the adapters for `config`; failures become statuses with hints."""
        self.stop_services()
        self.gate.live = live
        services = BridgeServices(self.gate, config, on_event=self.adapter_event.emit)
        self.services = services
        services.start(strict=False, ableton_live=live)
        self.connections_changed.emit()

    def stop_services(self) -> None:
        if self.services is not None:
            self.services.close()
            self.services = None

    def connections(self) -> tuple[ConnectionStatus, ...]:
        return () if self.services is None else self.services.statuses()

    def close(self) -> None:
        self.stop_services()
        self.gate.close()
        self.session.close(2.0)
        sys.setswitchinterval(self._saved_switch)
