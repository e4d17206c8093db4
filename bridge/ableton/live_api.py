"""Live's calls over AbletonOSC, typed: the song and the Session view's selection, tracks, clip
slots, clips and their notes — the calls the Ableton adapter makes. Long note lists are sent in
chunks that fit a datagram; notes are read in time windows sized so that each reply fits one
(from the clip's length and any known note count), and a reply that still does not fit is read
again in smaller windows. `burst` puts queries, writes and note reads in one burst: one tick.
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
ALL_NOTES = (0, PITCH_SPAN, TIME_START, TIME_END - TIME_START)  # get/remove notes: every note
NOTES_PER_WINDOW = 300  # a get/notes reply holds ~430 notes in 9,216 bytes
# A clip whose note count is unknown is read in windows of this many beats from the start: 430
# notes in 16 beats (27 a beat) is denser than any melody, so no reply needs a second try.
WINDOW_BEATS = 16
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
class NoteRead:
    """The notes of one clip to read in a burst: its span (length, or the end of its region if
    later) places the windows, `expected` (a known note count, 0 if none) sizes them."""

    track: int
    scene: int
    span_beats: float
    expected: int = 0


@dataclass(frozen=True)
class WatchedClip:
    """What live mode polls, from one burst: the song (with the selection, None where the
    master or a return track is selected), the watched slot's track name, and — when the slot
    still holds a MIDI clip — the clip and its notes."""

    song: SongInfo
    track_name: str
    info: ClipInfo | None  # None: the slot is empty (the clip was deleted)
    notes: tuple[LiveNote, ...]


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

    @property
    def span_beats(self) -> float:
        """Where its notes can lie: the clip, or the region where that ends later."""
        return max(self.length_beats, self.region_end_beats)



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
        requests = list(SONG_REQUESTS)
        if selection:
            requests += [Request("/live/view/get/selected_track"),
                         Request("/live/view/get/selected_scene")]
        return _song_info(self.ask(requests, code=ErrorCode.BAD_INPUT))

    def watch(self, slot: SlotRef, span_beats: float, expected: int = 0) -> WatchedClip:
        """Live mode's poll in one burst (one tick): the song and the selection, the slot's
        track name, and the clip there with its region and notes (`span_beats` and `expected`:
        the clip's span and note count last seen, to size the read windows). A selected master
        or return track reads as no selection; a slot emptied since reads as `info` None (one
        more tick to tell)."""
        requests = [*SONG_REQUESTS,
                    Request("/live/view/get/selected_track", optional=True),
                    Request("/live/view/get/selected_scene", optional=True),
                    Request("/live/track/get/name", (slot.track,), 1),
                    *(_slot(f"/live/clip/get/{name}", slot.track, slot.scene, optional=i >= 2)
                      for i, name in enumerate(CLIP_FIELDS))]
        try:
            replies, (notes,) = self.burst(requests, [NoteRead(slot.track, slot.scene,
                                                               span_beats, expected)])
        except AbletonError:
            status = self.slot_status(slot.track, slot.scene)
            if not status.has_clip:
                return WatchedClip(self.song_info(), status.track_name, None, ())
            raise
        song = _song_info(replies[:len(SONG_REQUESTS) + 2])
        track_name = _str(_first(replies[len(SONG_REQUESTS) + 2]), "track name")
        return WatchedClip(song, track_name, _clip_info(replies[len(SONG_REQUESTS) + 3:]), notes)

    def selection(self) -> SlotRef | None:
        """The selected Session slot; None where the master or a return track is selected."""
        track, scene = self.ask([Request("/live/view/get/selected_track", optional=True),
                                 Request("/live/view/get/selected_scene", optional=True)])
        if track is None or scene is None:
            return None
        return SlotRef(_int(_first(track), "selected_track"), _int(_first(scene), "selected_scene"))

    def select(self, track: int, scene: int) -> None:
        """Select a Session-view slot (to give the user's selection back)."""
        self.ask([Request("/live/view/set/selected_track", (track,), reply=False),
                  Request("/live/view/set/selected_scene", (scene,), reply=False),
                  Request("/live/view/get/selected_scene")])

    def burst(self, requests: Sequence[Request], reads: Sequence[NoteRead] = (), *,
              code: ErrorCode | None = None
              ) -> tuple[list[tuple[WireValue, ...] | None], list[tuple[LiveNote, ...]]]:
        """`requests` (queries and writes) and then the notes of each of `reads`, in one burst:
        AbletonOSC handles it in order, so notes read after writes are the written ones.

        Returns one entry per request (its reply; None for a write or a missing optional
        answer) and the notes of each read, sorted by pitch then time. A notes window whose
        reply was too long for a datagram is read again in smaller windows (further bursts).
        Raises AbletonError for a refusal, ReplyTimeoutError for a required answer missing."""
        with self._counts_lock:
            unknown = set(self._unknown)
        kept = [i for i, r in enumerate(requests) if not (r.optional and r.address in unknown)]
        windows = [(n, w) for n, read in enumerate(reads) for w in _first_windows(read)]
        notes: list[list[LiveNote]] = [[] for _ in reads]
        sent = [requests[i] for i in kept]
        answers: dict[int, tuple[WireValue, ...] | None] = {}
        while True:
            batch = sent + [_notes_request(reads[n], w) for n, w in windows]
            outcome = self.exchange(batch)
            self._remember_unknown(outcome)
            payloads, failures = _in_request_order(outcome, batch)
            for position, index in enumerate(kept if sent else ()):
                answers[index] = self._answer(batch[position], payloads[position],
                                              failures[position], code)
            smaller: list[tuple[int, tuple[float, float]]] = []
            for position, (n, window) in enumerate(windows, start=len(sent)):
                payload, failure = payloads[position], failures[position]
                if payload is not None:
                    notes[n] += _parse_notes(payload)
                elif failure is not None and _is_too_long(failure):
                    read = reads[n]
                    pieces = _split_window(window, read.span_beats, 4)
                    if len(pieces) < 2:
                        raise AbletonError(f"the notes of track {read.track}, scene "
                                           f"{read.scene} from {window[0]:g} beats do not fit "
                                           "one reply")
                    smaller += [(n, piece) for piece in pieces]
                else:
                    self._answer(batch[position], None, failure, code)  # raises
            if not smaller:
                break
            logger.info("AbletonOSC: %d notes window(s) too long for one reply; reading %d "
                        "smaller ones", len({w for _, w in smaller}), len(smaller))
            sent, windows = [], smaller
        replies = [answers.get(i) for i in range(len(requests))]
        return replies, [tuple(sorted(found, key=lambda n: (n.pitch, n.start_beats)))
                         for found in notes]

    def _answer(self, request: Request, payload: tuple[WireValue, ...] | None,
                failure: str | None, code: ErrorCode | None) -> tuple[WireValue, ...] | None:
        if payload is not None or not request.reply or request.optional:
            return payload
        if failure is not None:
            raise AbletonError(f"Live refused {request.address}: {failure}", code)
        self._check([request], Outcome((None,), (), (0,)), code, None)  # raises the timeout
        return None

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
        replies = self.ask([_slot(f"/live/clip/get/{n}", track, scene, optional=i >= 2)
                            for i, n in enumerate(CLIP_FIELDS)])
        return _clip_info(replies)

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
        self.ask([_slot("/live/clip/remove/notes", track, scene, *ALL_NOTES, write=True),
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
        """Every note of the clip (all pitches, all times), sorted by pitch then time, read in
        windows sized from `span_beats` (the clip's length) and `expected` (a note count)."""
        return self.burst([], [NoteRead(track, scene, span_beats, expected)])[1][0]

    def _one(self, request: Request) -> WireValue:
        return _first(self.ask([request])[0])


SONG_REQUESTS = (
    Request("/live/song/get/tempo"),
    Request("/live/song/get/signature_numerator"),
    Request("/live/song/get/signature_denominator"),
    Request("/live/song/get/root_note", optional=True),
    Request("/live/song/get/scale_name", optional=True),
)
# The clip's fields `clip_info` reads; from "name" on optional (older AbletonOSC lacks the loop
# and marker properties; Nil reads as absent).
CLIP_FIELDS = ("is_midi_clip", "length", "name", "looping", "loop_start", "loop_end",
               "start_marker", "end_marker")


def _song_info(replies: Sequence[tuple[WireValue, ...] | None]) -> SongInfo:
    """SONG_REQUESTS' replies, then optionally selected_track and selected_scene's."""
    values = [_first(r) for r in replies]
    tempo, num, den, root, scale = values[:5]
    track, scene = (values[5], values[6]) if len(values) > 5 else (None, None)
    return SongInfo(
        tempo_bpm=_float(tempo, "tempo"),
        ts_num=_int(num, "signature_numerator"),
        ts_den=_int(den, "signature_denominator"),
        root_note=None if root is None else _int(root, "root_note"),
        scale_name=None if scale is None else str(scale),
        selected_track=None if track is None else _int(track, "selected_track"),
        selected_scene=None if scene is None else _int(scene, "selected_scene"),
    )


def _clip_info(replies: Sequence[tuple[WireValue, ...] | None]) -> ClipInfo:
    """The replies to CLIP_FIELDS' queries as a ClipInfo."""
    values = dict(zip(CLIP_FIELDS, (_first(r) for r in replies), strict=True))
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


def write_request(address: str, track: int, scene: int, *args: WireValue) -> Request:
    """A write to a clip slot or clip (no reply)."""
    return _slot(address, track, scene, *args, write=True)


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


def _first_windows(read: NoteRead) -> list[tuple[float, float]]:
    """The windows a clip's notes are first asked in: enough for the known count, and (count
    unknown) one per WINDOW_BEATS of its span, so that no reply has to be asked for again."""
    pieces = max(math.ceil(read.expected / NOTES_PER_WINDOW) if read.expected else 1,
                 1 if read.expected else math.ceil(read.span_beats / WINDOW_BEATS))
    return _split_window((TIME_START, TIME_END), read.span_beats, pieces)


def _notes_request(read: NoteRead, window: tuple[float, float]) -> Request:
    lo, hi = window
    return _slot("/live/clip/get/notes", read.track, read.scene, 0, PITCH_SPAN, lo, hi - lo)


def _in_request_order(outcome: Outcome, requests: Sequence[Request]
                      ) -> tuple[list[tuple[WireValue, ...] | None], list[str | None]]:
    """Per request of a burst: its reply, or the error that took its place. AbletonOSC handles
    a burst in order and answers each query once (a reply or `/live/error`), so the n-th
    arrival belongs to the n-th query. (Replies to identical queries, e.g. the windows of one
    clip, are matched first come, first served by the client; the arrival order puts each
    back in its place.) Assumes the writes succeeded: a failed write shifts the errors, and
    then some query reads as refused, which is still an error."""
    payloads: list[tuple[WireValue, ...] | None] = [None] * len(requests)
    failures: list[str | None] = [None] * len(requests)
    queries = [i for i, r in enumerate(requests) if r.reply]
    for index, arrival in zip(queries, outcome.arrivals, strict=False):
        if isinstance(arrival, str):
            failures[index] = arrival
        else:
            payloads[index] = outcome.replies[arrival]
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
