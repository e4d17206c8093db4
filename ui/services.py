"""Starting and stopping the bridge adapters (OSC API, Ableton, REAPER spool, MIDI ports) on one
session: the single starter behind both `accobridge serve` and the panel.

Each adapter reports a `ConnectionStatus` with a plain-language hint when it is not connected,
so the panel can list them and `serve` can log them; neither re-implements the start-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from bridge.adapter import SessionLike

# "listening": a server is up but no client has said hello yet (not "connected")
State = Literal["connected", "listening", "waiting", "off", "error"]
ANNOUNCE_NONE: Callable[[str], None] = lambda _line: None  # noqa: E731  # a no-op default


class MidiEndError(ValueError):
    """The "what ends a MIDI take" setting does not parse (`stop`, `loop`, `cc:NN`, `bars:N`)."""


def parse_meter(text: str) -> tuple[int, int]:
    """`serve --meter`'s "N/D" as (N, D), one the engine supports; ValueError otherwise."""
    from engine import SUPPORTED_METERS

    num, _, den = text.strip().partition("/")
    if num.isdigit() and den.isdigit() and (int(num), int(den)) in SUPPORTED_METERS:
        return int(num), int(den)
    names = ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS)
    raise ValueError(f"meter {text!r}: expected one of {names}")


@dataclass(frozen=True)
class ServiceConfig:
    """Which adapters to run and where; built from `serve`'s flags or the panel's settings."""

    osc_enabled: bool = True
    osc_port: int = 17000
    listen_host: str = "127.0.0.1"
    ableton: bool = False
    ableton_host: str = "127.0.0.1"
    ableton_send_port: int = 11000
    ableton_reply_port: int = 11001
    reaper_spool: str | None = None  # None: off; "": REAPER's default spool folder
    midi: bool = False
    midi_end: str = "stop"
    midi_meter: str = "4/4"  # takes played into the ports (MIDI clock carries no meter)


@dataclass(frozen=True)
class ConnectionStatus:
    """One connection as the user should understand it."""

    name: str  # "OSC API", "Ableton Live", "REAPER", "MIDI ports"
    state: State
    detail: str  # what is true now ("listening on 127.0.0.1:17000")
    hint: str = ""  # what to do when it is not connected


HINTS = {
    "osc_off": "Turn on the OSC API in Settings to let scripts and DAW clients send clips.",
    "osc_listening": "No client has said hello yet: send a clip with `accobridge send "
                     "melody.mid`, or from your tool (/acco/hello, then the clip).",
    "osc_error": "Another program (perhaps a second AccoBridge) holds this port: quit it or pick "
                 "another port in Settings.",
    "ableton_off": "Turn on Ableton Live in Settings to read the selected clip from Live.",
    "ableton_waiting": "Start Ableton Live with the AbletonOSC remote script chosen as a Control "
                       "Surface (Preferences > Link, Tempo & MIDI), then select a MIDI clip.",
    "ableton_error": "Only one program per computer can talk to AbletonOSC (reply port 11001): "
                     "close the other one.",
    "reaper_off": "Turn on the REAPER spool in Settings to exchange clips with REAPER.",
    "reaper_waiting": "In REAPER: Actions > Load ReaScript... pick AccoBridge.lua, then run it "
                      "with a MIDI item selected.",
    "reaper_error": "The spool folder cannot be used: pick a writable folder in Settings.",
    "midi_off": "Turn on MIDI ports in Settings to play a melody into AccoBridge In.",
    "midi_error": "No MIDI system answered: on Linux start JACK or load the ALSA sequencer "
                  "(snd-seq); on macOS/Windows check that no other program blocks MIDI.",
}


class BridgeServices:
    """The adapters `config` asks for, all feeding `session`.

    `start(strict=True)` (serve) lets start-up errors escape as they always did; the panel uses
    `strict=False`, which turns each failure into an "error" status with a hint instead.
    `announce(line)` receives serve's console lines; `on_event(adapter, kind, message)` hears
    adapter reports (any thread: keep it short). `close()` stops the adapters, not the session.
    """

    def __init__(
        self, session: SessionLike, config: ServiceConfig, *,
        log: logging.Logger | None = None,
        announce: Callable[[str], None] = ANNOUNCE_NONE,
        on_event: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self._log = log or logging.getLogger("accobridge.services")
        self._announce = announce
        self._on_event = on_event
        self._lock = threading.Lock()
        self._closers: list[Any] = []
        self._statuses: dict[str, ConnectionStatus] = {}
        self.server: Any = None
        self.ableton: Any = None  # the AbletonAdapter, when running
        self.midi: Any = None  # the MidiAdapter, when running
        self._started = False

    # ---- start / stop -------------------------------------------------------------------

    def start(self, strict: bool = True, ableton_live: bool = True) -> None:
        """Start what the config enables. `ableton_live`: follow the selected clip and
        re-generate when its notes change (serve always does; the panel's live mode)."""
        self._started = True
        self._set("osc", ConnectionStatus("OSC API", "off", "off", HINTS["osc_off"]))
        self._set("ableton", ConnectionStatus("Ableton Live", "off", "off", HINTS["ableton_off"]))
        self._set("midi", ConnectionStatus("MIDI ports", "off", "off", HINTS["midi_off"]))
        self._set("reaper", ConnectionStatus("REAPER", "off", "off", HINTS["reaper_off"]))
        cfg = self.config
        if cfg.osc_enabled:
            self._start_osc(strict)
        if cfg.ableton:
            self._guard(strict, "ableton", "Ableton Live", lambda: self._start_ableton(
                ableton_live))
        if cfg.midi:
            self._start_midi(strict)
        if cfg.reaper_spool is not None:
            self._guard(strict, "reaper", "REAPER", self._start_reaper)

    def close(self) -> None:
        """Stop every adapter (the OSC server last started, first stopped). Idempotent."""
        with self._lock:
            closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                closer.close()
            except Exception:  # one adapter failing to close must not keep the others open
                self._log.exception("closing %r failed", closer)
        self.server = self.ableton = self.midi = None

    def __enter__(self) -> BridgeServices:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def set_midi_meter(self, meter: str) -> None:
        """The meter of MIDI takes from the next one on (the panel's analysis editor): kept
        in the config and handed to the running ports. ValueError for a meter not supported."""
        ts_num, ts_den = parse_meter(meter)
        self.config = replace(self.config, midi_meter=f"{ts_num}/{ts_den}")
        if self.midi is not None:
            self.midi.set_meter(ts_num, ts_den)

    def statuses(self) -> tuple[ConnectionStatus, ...]:
        """Every adapter's status; the OSC API's says "connected" once a client said hello."""
        server = self.server
        clients = server.stats().get("peers", 0) if server is not None else 0
        with self._lock:
            osc = self._statuses.get("osc")
            if osc is not None and osc.state == "listening" and clients:
                self._statuses["osc"] = replace(
                    osc, state="connected", hint="",
                    detail=f"{clients} client{'s' if clients > 1 else ''} said hello; "
                           f"{osc.detail}")
            return tuple(self._statuses.values())

    def _set(self, key: str, status: ConnectionStatus) -> None:
        with self._lock:
            self._statuses[key] = status

    def _update(self, key: str, **changes: Any) -> None:
        with self._lock:
            if key in self._statuses:
                self._statuses[key] = replace(self._statuses[key], **changes)

    def _guard(self, strict: bool, key: str, name: str, start: Callable[[], None]) -> None:
        try:
            start()
        except Exception as err:
            if strict:
                raise
            self._log.warning("%s: %s", name, err)
            self._set(key, ConnectionStatus(name, "error", str(err), HINTS[f"{key}_error"]))

    def _report(self, adapter: str, kind: str, message: str) -> None:
        if self._on_event is not None:
            try:
                self._on_event(adapter, kind, message)
            except Exception:
                self._log.exception("on_event raised for %s %s", adapter, kind)

    # ---- the adapters -------------------------------------------------------------------

    def _start_osc(self, strict: bool) -> None:
        from bridge.server import BridgeServer

        cfg = self.config
        try:
            server = BridgeServer(self.session, cfg.listen_host, cfg.osc_port)
        except OSError as err:
            if strict:
                raise
            self._log.warning("OSC API: cannot listen on %s:%s: %s", cfg.listen_host,
                              cfg.osc_port, err)
            self._set("osc", ConnectionStatus(
                "OSC API", "error", f"port {cfg.osc_port} unavailable: {err.strerror or err}",
                HINTS["osc_error"]))
            return
        with self._lock:
            self._closers.append(server)
        self.server = server
        self._set("osc", ConnectionStatus("OSC API", "listening",
                                          f"listening on {server.host}:{server.port}",
                                          HINTS["osc_listening"]))
        self._announce(f"accobridge: OSC API listening on {server.host}:{server.port}")

    def _start_ableton(self, live: bool) -> None:
        """AbletonOSC adapter on the selected clip; a Live that is not running yet is reported,
        not fatal (the OSC API keeps serving)."""
        from bridge.ableton.adapter import AbletonAdapter
        from bridge.ableton.live_api import LiveApi
        from bridge.errors import BridgeError

        log = self._log

        def on_event(request_id: str, kind: str, payload: object) -> None:
            if kind not in ("result", "written"):  # the adapter logs each job in one line
                log.debug("ableton %s %s: %s", request_id or "-", kind, payload)
            if kind == "status" and isinstance(payload, tuple) and len(payload) == 3 \
                    and payload[0] in ("waiting", "watching"):
                waiting = payload[0] == "waiting"
                self._update("ableton", state="waiting" if waiting else "connected",
                             detail=str(payload[2]),
                             hint=HINTS["ableton_waiting"] if waiting else "")
            elif kind == "error" and isinstance(payload, tuple) and len(payload) == 2:
                self._update("ableton", state="waiting", detail=str(payload[1]),
                             hint=HINTS["ableton_waiting"])
            elif kind == "written":
                self._update("ableton", state="connected", detail="wrote the parts to Live",
                             hint="")
            self._report("ableton", kind, str(payload))

        cfg = self.config
        api = LiveApi(cfg.ableton_host, cfg.ableton_send_port, cfg.ableton_reply_port)
        adapter = AbletonAdapter(api, self.session, on_event=on_event)
        with self._lock:
            self._closers.extend([api, adapter])
        self.ableton = adapter
        try:
            if live:
                adapter.start_live()  # never raises for Live or the selection: it waits
            else:
                adapter.fetch_selected_clip()  # only to learn whether Live answers
            if live and adapter.waiting_for is not None:
                self._set("ableton", ConnectionStatus(
                    "Ableton Live", "waiting", f"waiting for {adapter.waiting_for}",
                    HINTS["ableton_waiting"]))
            else:
                self._set("ableton", ConnectionStatus(
                    "Ableton Live", "connected",
                    f"watching clip {adapter.watched}" if live else "Live answers"))
        except BridgeError as err:
            log.warning("ableton: %s (is Live running with AbletonOSC?)", err)
            self._set("ableton", ConnectionStatus("Ableton Live", "waiting", str(err),
                                                  HINTS["ableton_waiting"]))

    def _start_midi(self, strict: bool) -> None:
        from bridge.midi.adapter import MidiAdapter

        def on_report(kind: str, message: str) -> None:
            if kind == "lost":
                self._update("midi", state="error", detail=message, hint=HINTS["midi_error"])
            elif kind == "back":
                self._update("midi", state="connected", detail=message, hint="")
            self._report("midi", kind, message)

        ts_num, ts_den = parse_meter(self.config.midi_meter)
        try:  # the adapter logs its own reports (ports lost/back, takes, errors)
            adapter = MidiAdapter(self.session, end_on=self.config.midi_end, on_report=on_report,
                                  ts_num=ts_num, ts_den=ts_den)
        except ValueError as err:  # a bad midi_end setting
            raise MidiEndError(str(err)) from err
        except Exception as err:  # no MIDI system: the other adapters keep serving
            self._log.warning("midi: ports could not be opened: %s", err)
            self._set("midi", ConnectionStatus("MIDI ports", "error", str(err),
                                               HINTS["midi_error"]))
            return
        with self._lock:
            self._closers.append(adapter)
        self.midi = adapter
        if not adapter.ports.is_open:  # no MIDI system yet: the "lost" report set the status;
            return  # the ports open, and "back" says so, once JACK or the OS service runs
        self._set("midi", ConnectionStatus("MIDI ports", "connected",
                                           "AccoBridge In/Out open"))
        self._announce("accobridge: MIDI ports AccoBridge In/Out open")

    def _start_reaper(self) -> None:
        from bridge.reaper import LUA_SCRIPT, ReaperSpool, default_spool_folder

        folder = Path(self.config.reaper_spool or default_spool_folder())  # "" = default

        def on_activity(what: str, seq: int) -> None:
            if what in ("clip", "result"):
                self._update("reaper", state="connected", detail=f"{what} {seq} via {folder}",
                             hint="")
            self._report("reaper", what, str(seq))

        spool = ReaperSpool(folder, self.session, on_activity=on_activity)
        with self._lock:
            self._closers.append(spool)
        self._set("reaper", ConnectionStatus("REAPER", "waiting", f"spool {folder}",
                                             HINTS["reaper_waiting"]))
        self._announce(f"accobridge: REAPER spool {folder} (load {LUA_SCRIPT} in REAPER)")
