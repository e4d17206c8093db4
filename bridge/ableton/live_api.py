"""Live's calls over AbletonOSC, typed: the song and the Session view's selection, tracks, clip
slots, clips and their notes — the calls the Ableton adapter makes. Long note lists are sent in
chunks that fit a datagram, and a reply too long for one is read again in smaller time windows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.ableton.errors import AbletonError
from bridge.ableton.osc_client import (
    MAX_PACKET_BYTES,
    AbletonOscClient,
    Outcome,
    Request,
    encode,
)
from bridge.errors import ErrorCode
from bridge.osc import WireValue

logger = logging.getLogger(__name__)

MAX_NOTES_PER_MESSAGE = 256  # AbletonOSC's add/notes takes any count; this keeps ~5.4 KB
# get/notes and remove/notes ranges: every pitch (span 128 includes 127, which AbletonOSC's
# default span of 127 leaves out) and every time Live allows.
PITCH_SPAN = 128
TIME_START = -8192.0
TIME_END = 8192.0
NOTES_PER_WINDOW = 300  # a get/notes reply holds ~430 notes in 9,216 bytes
MIN_WINDOW_BEATS = 1 / 16
TOO_LONG_MARKERS = ("message too long", "emsgsize")  # a reply that did not fit a datagram

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class LiveNote:
    """A note as Live stores it: times in beats from the clip start, velocity a float."""

    pitch: int
    start_beats: float
    duration_beats: float
    velocity: float = 100.0
    mute: bool = False


@dataclass(frozen=True)
class SongInfo:
    """Tempo, meter and Live 12's scale; with `selection`, the Session view's selected slot."""

    tempo_bpm: float
    ts_num: int
    ts_den: int
    root_note: int | None  # 0 = C … 11 = B; None where Live/AbletonOSC has no scale
    scale_name: str | None
    selected_track: int | None = None
    selected_scene: int | None = None

    @property
    def key_hint(self) -> str | None:
        if self.root_note is None or not self.scale_name:
            return None
        return f"{NOTE_NAMES[self.root_note % 12]} {self.scale_name}"


@dataclass(frozen=True)
class SlotStatus:
    track_name: str
    has_clip: bool


@dataclass(frozen=True)
class ClipInfo:
    """A clip's length and the region that plays: the loop when looping, else the markers."""

    is_midi: bool
    name: str
    length_beats: float
    looping: bool
    region_start_beats: float
    region_end_beats: float




@dataclass(frozen=True)
class SlotRef:
    """A Session-view clip slot by AbletonOSC's 0-based indices."""

    track: int
    scene: int

    def __str__(self) -> str:  # Live's own numbering, for messages
        return f"track {self.track + 1}, scene {self.scene + 1}"


class LiveApi(AbletonOscClient):
    """Live's calls, each one burst (or a few, for long note lists) of the client's requests;
    constructed like AbletonOscClient (127.0.0.1:11000, replies on 11001)."""

    # ---- song and selection ---------------------------------------------------------------

    def song_info(self, *, selection: bool = False) -> SongInfo:
        """Tempo, meter, Live 12's root/scale and optionally the selection: one burst (one
        tick). A selected master or return track makes AbletonOSC fail (code 1, BAD_INPUT)."""
        requests = [
            Request("/live/song/get/tempo"),
            Request("/live/song/get/signature_numerator"),
            Request("/live/song/get/signature_denominator"),
            Request("/live/song/get/root_note", optional=True),
            Request("/live/song/get/scale_name", optional=True),
        ]
        if selection:
            requests += [Request("/live/view/get/selected_track"),
                         Request("/live/view/get/selected_scene")]
        values = [_first(r) for r in self.ask(requests, code=ErrorCode.BAD_INPUT)]
        tempo, num, den, root, scale = values[:5]
        return SongInfo(
            tempo_bpm=_float(tempo, "tempo"),
            ts_num=_int(num, "signature_numerator"),
            ts_den=_int(den, "signature_denominator"),
            root_note=None if root is None else _int(root, "root_note"),
            scale_name=None if scale is None else str(scale),
            selected_track=_int(values[5], "selected_track") if selection else None,
            selected_scene=_int(values[6], "selected_scene") if selection else None,
        )

    def selected_track(self) -> int:
        return _int(self._one(Request("/live/view/get/selected_track")), "selected_track")

    def selected_scene(self) -> int:
        return _int(self._one(Request("/live/view/get/selected_scene")), "selected_scene")

    def tempo(self) -> float:
        return _float(self._one(Request("/live/song/get/tempo")), "tempo")

    def signature(self) -> tuple[int, int]:
        num, den = self.ask([Request("/live/song/get/signature_numerator"),
                             Request("/live/song/get/signature_denominator")])
        return (_int(_first(num), "signature_numerator"),
                _int(_first(den), "signature_denominator"))

    def root_note(self) -> int | None:
        """Live 12's scale root (0 = C); None when Live or AbletonOSC has none."""
        value = self._one(Request("/live/song/get/root_note", optional=True))
        return None if value is None else _int(value, "root_note")

    def scale_name(self) -> str | None:
        value = self._one(Request("/live/song/get/scale_name", optional=True))
        return None if value is None else str(value)

    # ---- tracks ---------------------------------------------------------------------------

    def num_tracks(self) -> int:
        return _int(self._one(Request("/live/song/get/num_tracks")), "num_tracks")

    def num_scenes(self) -> int:
        return _int(self._one(Request("/live/song/get/num_scenes")), "num_scenes")

    def track_name(self, track: int) -> str:
        return _str(self._one(Request("/live/track/get/name", (track,), 1)), "track name")

    def track_names(self) -> list[str]:
        """Every track's name, one burst of per-track queries (replies carry the index)."""
        count = self.num_tracks()
        replies = self.ask([Request("/live/track/get/name", (t,), 1) for t in range(count)])
        return [_str(_first(r), "track name") for r in replies]

    def set_track_name(self, track: int, name: str) -> None:
        (reply,) = self.ask([Request("/live/track/set/name", (track, name), 1, reply=False),
                             Request("/live/track/get/name", (track,), 1)])
        if _first(reply) != name:
            raise AbletonError(f"track {track} is named {_first(reply)!r}, not {name!r}")

    def create_midi_track(self) -> int:
        """Append a MIDI track (AbletonOSC does not answer; the track count confirms it) and
        return its index."""
        before = self.num_tracks()
        (reply,) = self.ask([Request("/live/song/create_midi_track", (-1,), reply=False),
                             Request("/live/song/get/num_tracks")])
        after = _int(_first(reply), "num_tracks")
        if after != before + 1:
            raise AbletonError(f"Live did not add a MIDI track ({before} tracks before, "
                               f"{after} after)")
        return after - 1

    def clip_lengths(self, track: int) -> tuple[float | None, ...]:
        """Every slot of `track`: its clip's length, or None (Nil) for an empty slot."""
        reply = self.ask([Request("/live/track/get/clips/length", (track,), 1)])[0] or ()
        return tuple(None if v is None else _float(v, "clip length") for v in reply)

    # ---- clip slots and clips ---------------------------------------------------------------

    def slot_status(self, track: int, scene: int) -> SlotStatus:
        """The track's name and whether the slot holds a clip, in one burst."""
        name, has = self.ask([Request("/live/track/get/name", (track,), 1),
                              _slot("/live/clip_slot/get/has_clip", track, scene)])
        return SlotStatus(_str(_first(name), "track name"), _bool(_first(has), "has_clip"))

    def has_clip(self, track: int, scene: int) -> bool:
        return _bool(self._one(_slot("/live/clip_slot/get/has_clip", track, scene)), "has_clip")

    def is_midi_clip(self, track: int, scene: int) -> bool:
        return _bool(self._one(_slot("/live/clip/get/is_midi_clip", track, scene)),
                     "is_midi_clip")

    def clip_length(self, track: int, scene: int) -> float:
        return _float(self._one(_slot("/live/clip/get/length", track, scene)), "clip length")

    def clip_info(self, track: int, scene: int) -> ClipInfo:
        """Kind, name, length and playing region of the clip in one burst. The loop and marker
        properties are optional (older AbletonOSC lacks them; Nil reads as absent)."""
        names = ("is_midi_clip", "length", "name", "looping", "loop_start", "loop_end",
                 "start_marker", "end_marker")
        replies = self.ask([_slot(f"/live/clip/get/{n}", track, scene, optional=i >= 2)
                            for i, n in enumerate(names)])
        values = dict(zip(names, (_first(r) for r in replies), strict=True))
        length = _float(values["length"], "clip length")
        looping = bool(values["looping"]) if values["looping"] is not None else False
        region = (0.0, length)
        keys = ("loop_start", "loop_end") if looping else ("start_marker", "end_marker")
        start, end = values[keys[0]], values[keys[1]]
        if start is not None and end is not None:
            region = (_float(start, keys[0]), _float(end, keys[1]))
        name = values["name"]
        return ClipInfo(
            is_midi=_bool(values["is_midi_clip"], "is_midi_clip"),
            name=name if isinstance(name, str) else "",
            length_beats=length,
            looping=looping,
            region_start_beats=region[0],
            region_end_beats=region[1],
        )

    def create_clip(self, track: int, scene: int, length_beats: float) -> None:
        """Create an empty MIDI clip; confirmed with has_clip before any note is added."""
        (reply,) = self.ask([
            _slot("/live/clip_slot/create_clip", track, scene, float(length_beats), write=True),
            _slot("/live/clip_slot/get/has_clip", track, scene),
        ])
        if not _bool(_first(reply), "has_clip"):
            raise AbletonError(f"Live did not create a clip on track {track}, scene {scene}")

    def delete_clip(self, track: int, scene: int) -> None:
        (reply,) = self.ask([_slot("/live/clip_slot/delete_clip", track, scene, write=True),
                             _slot("/live/clip_slot/get/has_clip", track, scene)])
        if _bool(_first(reply), "has_clip"):
            raise AbletonError(f"Live did not delete the clip on track {track}, scene {scene}")

    def set_clip_name(self, track: int, scene: int, name: str) -> None:
        self.ask([_slot("/live/clip/set/name", track, scene, name, write=True),
                  _slot("/live/clip/get/name", track, scene)])

    def remove_notes(self, track: int, scene: int) -> None:
        """Remove every note (all pitches, all times) from the clip."""
        self.ask([_slot("/live/clip/remove/notes", track, scene, 0, PITCH_SPAN, TIME_START,
                        TIME_END - TIME_START, write=True),
                  _slot("/live/clip_slot/get/has_clip", track, scene)])

    def add_notes(self, track: int, scene: int, notes: Sequence[LiveNote]) -> int:
        """Append `notes` in messages of ≤ 256 notes and ≤ MAX_PACKET_BYTES, sent in one burst
        that ends with a has_clip query; returns how many add/notes messages were sent."""
        chunks = note_chunks(track, scene, notes)
        requests = [Request("/live/clip/add/notes", args, 2, reply=False) for args in chunks]
        requests.append(_slot("/live/clip_slot/get/has_clip", track, scene))
        (reply,) = self.ask(requests)
        if not _bool(_first(reply), "has_clip"):
            raise AbletonError(f"the clip on track {track}, scene {scene} vanished while its "
                               "notes were written")
        return len(chunks)

    def clip_notes(self, track: int, scene: int, *, span_beats: float = 0.0,
                   expected: int = 0) -> tuple[LiveNote, ...]:
        """Every note of the clip (all pitches, all times), sorted by pitch then time.

        One get/notes query when the reply fits a datagram. A reply too long to send comes back
        as AbletonOSC's socket error, in the place of its query; that time window alone is read
        again in smaller windows, all sent in one burst. `span_beats` (the clip's length)
        places the windows, `expected` (a note count) chooses how many to start with."""
        windows = _split_window((TIME_START, TIME_END), span_beats,
                                math.ceil(expected / NOTES_PER_WINDOW) if expected else 1)
        notes: list[LiveNote] = []
        while windows:
            requests = [_slot("/live/clip/get/notes", track, scene, 0, PITCH_SPAN, lo, hi - lo)
                        for lo, hi in windows]
            outcome = self.exchange(requests)
            payloads, failures = _in_request_order(outcome, len(requests))
            smaller: list[tuple[float, float]] = []
            for window, payload, failure in zip(windows, payloads, failures, strict=True):
                if payload is not None:
                    notes += _parse_notes(payload)
                elif failure is not None and _is_too_long(failure):
                    pieces = _split_window(window, span_beats, 4)
                    if len(pieces) < 2:
                        raise AbletonError(f"the notes of track {track}, scene {scene} from "
                                           f"{window[0]:g} beats do not fit one reply")
                    smaller += pieces
                else:
                    self._check(requests, outcome, None, None)  # raises what went wrong
                    raise AbletonError(f"AbletonOSC did not answer get/notes: {failure}")
            if smaller:
                logger.info("AbletonOSC: notes of track %d scene %d too long for one reply; "
                            "reading %d smaller windows", track, scene, len(smaller))
            windows = smaller
        return tuple(sorted(notes, key=lambda n: (n.pitch, n.start_beats)))

    def _one(self, request: Request) -> WireValue:
        return _first(self.ask([request])[0])


def note_chunks(track: int, scene: int, notes: Sequence[LiveNote]) -> list[tuple[WireValue, ...]]:
    """add/notes argument lists: ≤ 256 notes each, each datagram ≤ MAX_PACKET_BYTES."""
    chunks: list[tuple[WireValue, ...]] = []
    pending = [list(notes[i:i + MAX_NOTES_PER_MESSAGE])
               for i in range(0, len(notes), MAX_NOTES_PER_MESSAGE)]
    while pending:
        chunk = pending.pop(0)
        args: tuple[WireValue, ...] = (track, scene)
        for n in chunk:
            args += (n.pitch, float(n.start_beats), float(n.duration_beats),
                     int(round(n.velocity)), bool(n.mute))
        if len(encode("/live/clip/add/notes", args)) > MAX_PACKET_BYTES and len(chunk) > 1:
            half = len(chunk) // 2
            pending[:0] = [chunk[:half], chunk[half:]]
            continue
        chunks.append(args)
    return chunks


def _slot(address: str, track: int, scene: int, *args: WireValue, write: bool = False,
          optional: bool = False) -> Request:
    return Request(address, (track, scene, *args), 2, reply=not write, optional=optional)


def _split_window(window: tuple[float, float], span_beats: float,
                  pieces: int) -> list[tuple[float, float]]:
    """`window` in about `pieces` parts. Live's whole time range splits at the clip's bounds
    (0 and its length, whole beats in between); a finite window splits into equal parts down to
    MIN_WINDOW_BEATS. Every edge is a binary fraction, so it is exact in an OSC float and the
    windows neither overlap nor leave gaps (Live computes start + span)."""
    lo, hi = window
    if pieces <= 1:
        return [window]
    if (lo, hi) == (TIME_START, TIME_END):
        span = math.ceil(span_beats) if span_beats > 0 else 0
        if span == 0:
            return [(TIME_START, 0.0), (0.0, TIME_END)]
        step = max(1, math.ceil(span / pieces))
        edges = [TIME_START, *(float(x) for x in range(0, span, step)), float(span), TIME_END]
        return list(zip(edges, edges[1:], strict=False))
    if hi - lo <= MIN_WINDOW_BEATS:
        return [window]
    width = (hi - lo) / pieces
    edges = [lo + i * width for i in range(pieces)] + [hi]
    return list(zip(edges, edges[1:], strict=False))


def _in_request_order(outcome: Outcome, count: int
                      ) -> tuple[list[tuple[WireValue, ...] | None], list[str | None]]:
    """Per request of a burst of identical queries (same address and indices, so replies were
    matched first come, first served): its reply, or the error that took its place."""
    payloads: list[tuple[WireValue, ...] | None] = [None] * count
    failures: list[str | None] = [None] * count
    for position, arrival in enumerate(outcome.arrivals[:count]):
        if isinstance(arrival, str):
            failures[position] = arrival
        else:
            payloads[position] = outcome.replies[arrival]
    return payloads, failures


def _is_too_long(error: str) -> bool:
    text = error.lower()
    return any(marker in text for marker in TOO_LONG_MARKERS)


def _parse_notes(values: Sequence[WireValue]) -> list[LiveNote]:
    if len(values) % 5:
        raise AbletonError(f"get/notes answered {len(values)} values, not groups of 5")
    return [
        LiveNote(_int(values[i], "pitch"), _float(values[i + 1], "start"),
                 _float(values[i + 2], "duration"), _float(values[i + 3], "velocity"),
                 _bool(values[i + 4], "mute"))
        for i in range(0, len(values), 5)
    ]


def _first(reply: tuple[WireValue, ...] | None) -> WireValue:
    return reply[0] if reply else None


def _int(value: WireValue, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a number")
    return int(value)


def _float(value: WireValue, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a number")
    return float(value)


def _bool(value: WireValue, what: str) -> bool:
    # AbletonOSC sends Python bools as T/F; older versions and other clients send 0/1.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a boolean")


def _str(value: WireValue, what: str) -> str:
    if not isinstance(value, str):
        raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a string")
    return value
