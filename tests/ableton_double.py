"""An AbletonOSC test double: a UDP server with an in-memory Live set, for the Ableton tests.

It follows AbletonOSC (github.com/ideoforms/AbletonOSC: `manager.py`, `abletonosc/osc_server.py`,
`handler.py`, `song.py`, `view.py`, `track.py`, `clip_slot.py`, `clip.py`) where it matters to
a client — each point below names what it mirrors:

- Transport (osc_server.py): one UDP socket; every `tick_s` (Live's ~100 ms tick, manager.py
  `tick`) it reads everything queued and handles it in order. Replies go to the sender's host at
  the fixed reply port (11001 there; `reply_port` here), from the listening socket.
- Replies (handler.py, create_*_callback): a getter answers on the query's own address with the
  object's indices first: song/view getters `value`, track `t, value`, clip_slot/clip `t, s,
  value`. Writes and methods (`set/*`, `create_midi_track`, `create_clip`, `add/notes` …) send
  nothing. Values go out typed as python-osc's builder infers them: bool → T/F, None → N (Nil),
  int → i, float → f (32-bit), str → s.
- Errors (manager.py `LiveOSCErrorLogHandler`): an unknown address is reported as `/live/error
  "Unknown OSC address: <address>"` and processing goes on; an exception in a handler is
  reported as `/live/error "Error handling OSC message: <exception>"` and ends the tick — the
  datagrams still queued wait for the next tick. Exception texts are Python's own here (an empty
  slot gives "'NoneType' object has no attribute 'length'", as in AbletonOSC, whose handlers
  call the attribute on `clip_slot.clip`, which is None); texts that come from Live itself
  (an occupied slot, an audio track) are paraphrased.
- Nil (handler.py `_get_property`, track.py `clips/*`): `/live/track/get/clips/name|length`
  answer Nil for empty slots; a property Live cannot read answers Nil (`nil_properties`).
- Notes (clip.py): `get/notes t s [pitch_start pitch_span time_start time_span]` defaults to
  pitches 0..126 (span 127) and times -8192..8192; replies are `t, s, (pitch, start, duration,
  velocity, mute)…` sorted by pitch then time, velocity a float, mute T/F. `add/notes` appends;
  `remove/notes` takes the same 0 or 4 range arguments.
- Song (song.py, view.py): `create_midi_track index` (−1 = end) answers nothing (clients read
  `num_tracks`); the selected track must be one of `song.tracks` (a master or return track
  raises "… is not in list"). `root_note`/`scale_name` exist only where that AbletonOSC
  version registers them (`scale_api`); elsewhere they are unknown addresses.
- Packet cap: macOS refuses UDP datagrams over 9,216 bytes. An incoming one is dropped and
  counted (the sender could not have sent it); a reply that big fails to send, which AbletonOSC
  reports as `/live/error "Socket error: … [Errno 40] Message too long"` (the real text carries
  a traceback) and ends the tick.

Test controls: `drop_incoming` loses chosen packets silently (UDP loss), `received` records every
datagram (address, size, argument count), `stats()` counts what happened.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import BadMessageError
from bridge.osc import WireMessage, WireValue, build_datagram, parse_datagram

logger = logging.getLogger(__name__)

MAX_PACKET_BYTES = 9_216
DEFAULT_TICK_S = 0.1
DEFAULT_PITCH_RANGE = (0, 127)  # AbletonOSC's get/notes default leaves out pitch 127
DEFAULT_TIME_RANGE = (-8192.0, 16384.0)
CLIP_PROPERTIES = ("name", "length", "is_midi_clip", "is_audio_clip", "looping", "loop_start",
                   "loop_end", "start_marker", "end_marker")

Note = tuple[int, float, float, float, bool]  # pitch, start, duration, velocity, mute


@dataclass
class FakeClip:
    notes: list[Note]
    length: float
    name: str = ""
    is_midi: bool = True
    looping: bool = True
    loop_start: float = 0.0
    loop_end: float | None = None  # None: the clip's length
    start_marker: float = 0.0
    end_marker: float | None = None

    def __post_init__(self) -> None:
        if self.loop_end is None:
            self.loop_end = self.length
        if self.end_marker is None:
            self.end_marker = self.length

    def prop(self, name: str) -> Any:
        if name == "is_midi_clip":
            return self.is_midi
        if name == "is_audio_clip":
            return not self.is_midi
        return getattr(self, name)


@dataclass
class FakeTrack:
    name: str
    slots: list[FakeClip | None]
    is_midi: bool = True


@dataclass
class LiveSet:
    """What the double serves. Mutate it only under `AbletonOSCDouble.lock`."""

    tracks: list[FakeTrack] = field(default_factory=list)
    num_scenes: int = 4
    tempo: float = 120.0
    signature_numerator: int = 4
    signature_denominator: int = 4
    root_note: int | None = 0
    scale_name: str | None = "Major"
    scale_api: bool = True  # False: an AbletonOSC without song root_note/scale_name handlers
    selected_track: int | str = 0  # a str ("Master") is a track outside song.tracks
    selected_scene: int = 0
    nil_properties: set[str] = field(default_factory=set)  # "clip.name", "song.tempo" …

    def add_track(self, name: str, *, midi: bool = True) -> int:
        self.tracks.append(FakeTrack(name, [None] * self.num_scenes, midi))
        return len(self.tracks) - 1


@dataclass(frozen=True)
class Received:
    address: str
    size: int
    n_args: int
    tick: int
    dropped: bool = False


class _SendFailed(OSError):
    pass


Handler = Callable[[list[WireValue]], tuple[Any, ...] | None]


class AbletonOSCDouble:
    """Serves `live` on 127.0.0.1:`port` (0: a free port) and answers to `reply_port`.
    Starts at once; `close()` stops it."""

    def __init__(self, live: LiveSet | None = None, *, tick_s: float = DEFAULT_TICK_S,
                 port: int = 0, reply_port: int = 11001,
                 max_packet_bytes: int = MAX_PACKET_BYTES) -> None:
        self.live = live if live is not None else LiveSet()
        self.lock = threading.RLock()
        self.reply_port = reply_port
        self.received: list[Received] = []
        self._tick_s = tick_s
        self._max = max_packet_bytes
        self._ticks = 0
        self._drops: list[list[Any]] = []  # [address, packets to let through first]
        self._counts = {"received": 0, "handled": 0, "replies": 0, "errors_sent": 0,
                        "dropped_oversize_in": 0, "dropped_oversize_out": 0,
                        "dropped_on_purpose": 0}
        self._remote: tuple[str, int] | None = None
        self._handlers = self._build_handlers()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind(("127.0.0.1", port))
        self._sock.setblocking(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abletonosc-double", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {**self._counts, "ticks": self._ticks}

    def drop_incoming(self, address: str, after: int = 0) -> None:
        """Lose one future packet to `address` silently, after letting `after` through."""
        with self.lock:
            self._drops.append([address, after])

    def sent_to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.address == address and not r.dropped]

    # Convenience accessors for tests (each takes the lock).

    def track_names(self) -> list[str]:
        with self.lock:
            return [t.name for t in self.live.tracks]

    def clip(self, track: int, scene: int) -> FakeClip | None:
        with self.lock:
            return self.live.tracks[track].slots[scene]

    def notes(self, track: int, scene: int) -> list[Note]:
        with self.lock:
            clip = self.live.tracks[track].slots[scene]
            assert clip is not None, f"no clip at track {track}, scene {scene}"
            return sorted(clip.notes)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def __enter__(self) -> AbletonOSCDouble:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the tick ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            with self.lock:
                self._ticks += 1
                self._process()

    def _process(self) -> None:
        """One tick of AbletonOSC's `OSCServer.process`: handle queued datagrams in order until
        none is left or a handler fails."""
        while True:
            try:
                data, sender = self._sock.recvfrom(65_536)
            except BlockingIOError:
                return
            self._counts["received"] += 1
            if len(data) > self._max:
                self._counts["dropped_oversize_in"] += 1
                self.received.append(Received("?", len(data), 0, self._ticks, dropped=True))
                continue
            self._remote = (sender[0], self.reply_port)
            try:
                message = parse_datagram(data)
            except BadMessageError as err:
                self._error(f"Error parsing OSC message: {err}")
                continue
            dropped = self._take_drop(message.address)
            self.received.append(Received(message.address, len(data), len(message.args),
                                          self._ticks, dropped))
            if dropped:
                self._counts["dropped_on_purpose"] += 1
                continue
            handler = self._handler(message.address)
            if handler is None:
                self._error(f"Unknown OSC address: {message.address}")
                continue
            self._counts["handled"] += 1
            try:
                reply = handler(list(message.args))
                if reply is not None:
                    self._send(message.address, reply)
            except _SendFailed as err:
                self._error(f"Socket error: OSError: {err}")
                return
            except Exception as err:  # as AbletonOSC: report, and end this tick
                self._error(f"Error handling OSC message: {err}")
                return

    def _take_drop(self, address: str) -> bool:
        for drop in self._drops:
            if drop[0] == address:
                if drop[1] == 0:
                    self._drops.remove(drop)
                    return True
                drop[1] -= 1
        return False

    def _send(self, address: str, values: Iterable[Any]) -> None:
        args = tuple(values)
        data = build_datagram(WireMessage(address, _builder_tags(args), args))
        if len(data) > self._max:
            self._counts["dropped_oversize_out"] += 1
            raise _SendFailed(f"[Errno 40] Message too long ({len(data)} bytes)")
        assert self._remote is not None
        self._sock.sendto(data, self._remote)
        self._counts["replies"] += 1

    def _error(self, text: str) -> None:
        self._counts["errors_sent"] += 1
        logger.debug("double: /live/error %s", text)
        with contextlib.suppress(_SendFailed):  # error texts are short
            self._send("/live/error", (text,))

    # ---- the handlers ------------------------------------------------------------------------

    def _handler(self, address: str) -> Handler | None:
        if address in ("/live/song/get/root_note", "/live/song/get/scale_name") \
                and not self.live.scale_api:
            return None
        return self._handlers.get(address)

    def _build_handlers(self) -> dict[str, Handler]:
        h: dict[str, Handler] = {
            "/live/test": self._test,
            "/live/view/get/selected_track": self._selected_track,
            "/live/view/get/selected_scene": lambda _: (self.live.selected_scene,),
            "/live/view/set/selected_track": lambda p: self._select("selected_track", p),
            "/live/view/set/selected_scene": lambda p: self._select("selected_scene", p),
            "/live/song/get/num_tracks": lambda _: (len(self.live.tracks),),
            "/live/song/get/num_scenes": lambda _: (self.live.num_scenes,),
            "/live/song/create_midi_track": self._create_midi_track,
            "/live/track/get/name": lambda p: (_i(p[0]), self._track(p).name),
            "/live/track/set/name": self._set_track_name,
            "/live/track/get/clips/name": lambda p: self._clips_property(p, "name"),
            "/live/track/get/clips/length": lambda p: self._clips_property(p, "length"),
            "/live/clip_slot/get/has_clip": lambda p: (*_ts(p), self._slot(p) is not None),
            "/live/clip_slot/create_clip": self._create_clip,
            "/live/clip_slot/delete_clip": self._delete_clip,
            "/live/clip/set/name": self._set_clip_name,
            "/live/clip/get/notes": self._get_notes,
            "/live/clip/add/notes": self._add_notes,
            "/live/clip/remove/notes": self._remove_notes,
        }
        for prop in ("tempo", "signature_numerator", "signature_denominator", "root_note",
                     "scale_name"):
            h[f"/live/song/get/{prop}"] = self._song_getter(prop)
        for prop in CLIP_PROPERTIES:
            h[f"/live/clip/get/{prop}"] = self._clip_getter(prop)
        return h

    def _test(self, _: list[WireValue]) -> None:
        self._send("/live/test", ("ok",))  # manager.py sends this itself, returns nothing

    def _select(self, what: str, params: list[WireValue]) -> None:
        setattr(self.live, what, _i(params[0]))

    def _selected_track(self, _: list[WireValue]) -> tuple[Any, ...]:
        selected = self.live.selected_track
        if not isinstance(selected, int):  # list(song.tracks).index(<master track>)
            raise ValueError(f"<Track.Track object '{selected}'> is not in list")
        return (selected,)

    def _song_getter(self, prop: str) -> Handler:
        def get(_: list[WireValue]) -> tuple[Any, ...]:
            if f"song.{prop}" in self.live.nil_properties:
                return (None,)
            return (getattr(self.live, prop),)

        return get

    def _create_midi_track(self, params: list[WireValue]) -> None:
        index = _i(params[0]) if params else -1
        live = self.live
        track = FakeTrack(f"{len(live.tracks) + 1}-MIDI", [None] * live.num_scenes)
        if index == -1:
            live.tracks.append(track)
        elif 0 <= index <= len(live.tracks):
            live.tracks.insert(index, track)
        else:
            raise RuntimeError("Index out of range")

    def _track(self, params: list[WireValue]) -> FakeTrack:
        return self.live.tracks[_i(params[0])]

    def _slot(self, params: list[WireValue]) -> FakeClip | None:
        return self._track(params).slots[_i(params[1])]

    def _set_track_name(self, params: list[WireValue]) -> None:
        self._track(params).name = str(params[1])

    def _clips_property(self, params: list[WireValue], prop: str) -> tuple[Any, ...]:
        track = self._track(params)
        return (_i(params[0]), *(None if c is None else c.prop(prop) for c in track.slots))

    def _clip(self, params: list[WireValue], attribute: str) -> FakeClip:
        clip = self._slot(params)
        if clip is None:  # AbletonOSC calls the attribute on clip_slot.clip, which is None
            raise AttributeError(f"'NoneType' object has no attribute '{attribute}'")
        return clip

    def _clip_getter(self, prop: str) -> Handler:
        def get(params: list[WireValue]) -> tuple[Any, ...]:
            clip = self._clip(params, prop)
            value = None if f"clip.{prop}" in self.live.nil_properties else clip.prop(prop)
            return (*_ts(params), value)

        return get

    def _create_clip(self, params: list[WireValue]) -> None:
        track = self._track(params)
        scene, length = _i(params[1]), _f(params[2])
        if track.slots[scene] is not None:
            raise RuntimeError("Cannot create a clip in a slot that already has one")
        if not track.is_midi:
            raise RuntimeError("MIDI clips can only be created on MIDI tracks")
        if not length > 0:
            raise RuntimeError("Invalid clip length")
        track.slots[scene] = FakeClip([], length)

    def _delete_clip(self, params: list[WireValue]) -> None:
        track = self._track(params)
        scene = _i(params[1])
        if track.slots[scene] is None:
            raise RuntimeError("No clip in this slot")
        track.slots[scene] = None

    def _set_clip_name(self, params: list[WireValue]) -> None:
        self._clip(params, "name").name = str(params[2])

    def _midi_clip(self, params: list[WireValue], attribute: str) -> FakeClip:
        clip = self._clip(params, attribute)
        if not clip.is_midi:
            raise RuntimeError("This operation is only allowed on MIDI clips")
        return clip

    def _get_notes(self, params: list[WireValue]) -> tuple[Any, ...]:
        clip = self._midi_clip(params, "get_notes_extended")
        p0, p_span, t0, t_span = _note_range(params[2:], "get")
        selected = sorted(n for n in clip.notes if _in_range(n, p0, p_span, t0, t_span))
        return (*_ts(params), *(v for note in selected for v in note))

    def _add_notes(self, params: list[WireValue]) -> None:
        clip = self._midi_clip(params, "add_new_notes")
        values = params[2:]
        if len(values) % 5:
            raise ValueError(f"not enough values to unpack (expected 5, got {len(values) % 5})")
        new: list[Note] = []
        for i in range(0, len(values), 5):
            pitch, start, duration, velocity, mute = values[i:i + 5]
            if not (isinstance(pitch, int) and 0 <= pitch <= 127) or not _f(duration) > 0:
                raise RuntimeError(f"Invalid note specification: {values[i:i + 5]}")
            new.append((pitch, _f(start), _f(duration), _f(velocity), bool(mute)))
        clip.notes.extend(new)  # Live's add_new_notes takes the whole message at once

    def _remove_notes(self, params: list[WireValue]) -> None:
        clip = self._midi_clip(params, "remove_notes_extended")
        p0, p_span, t0, t_span = _note_range(params[2:], "remove")
        clip.notes = [n for n in clip.notes if not _in_range(n, p0, p_span, t0, t_span)]


def _i(value: WireValue) -> int:
    return int(value)  # type: ignore[arg-type]  # as AbletonOSC: int(param), whatever it is


def _f(value: WireValue) -> float:
    return float(value)  # type: ignore[arg-type]


def _ts(params: list[WireValue]) -> tuple[int, int]:
    return _i(params[0]), _i(params[1])


def _note_range(values: list[WireValue], verb: str) -> tuple[float, float, float, float]:
    if len(values) == 0:
        return (*DEFAULT_PITCH_RANGE, *DEFAULT_TIME_RANGE)
    if len(values) == 4:
        p0, p_span, t0, t_span = (_f(v) for v in values)
        return p0, p_span, t0, t_span
    raise ValueError(f"Invalid number of arguments for /clip/{verb}/notes. Either 0 or 4 "
                     "arguments must be passed.")


def _in_range(note: Note, p0: float, p_span: float, t0: float, t_span: float) -> bool:
    return p0 <= note[0] < p0 + p_span and t0 <= note[1] < t0 + t_span


def _builder_tags(args: tuple[Any, ...]) -> str:
    """Type tags as python-osc's OscMessageBuilder infers them (AbletonOSC's reply path)."""
    tags = ""
    for value in args:
        if value is True:
            tags += "T"
        elif value is False:
            tags += "F"
        elif value is None:
            tags += "N"
        elif isinstance(value, str):
            tags += "s"
        elif isinstance(value, float):
            tags += "f"
        elif isinstance(value, int):
            tags += "i"
        else:
            raise TypeError(f"the double cannot send {value!r}")
    return tags
