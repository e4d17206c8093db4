"""Live's calls over AbletonOSC, typed: the song and the Session view's selection, tracks, clip
slots, clips and their notes — the calls the Ableton adapter makes. Long note lists are sent in
chunks that fit a datagram; notes are read in time windows sized so that each reply fits one
(from the clip's length and any known note count), and a reply that still does not fit is read
again in smaller windows. `burst` puts queries, writes and note reads in one burst: one tick.

The values live in `live_values`, the requests and the reading of replies in `live_requests`,
the chunks and windows of note lists in `note_transfer`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bridge.ableton.errors import AbletonError
from bridge.ableton.live_requests import (
    CLIP_FIELDS,
    SONG_REQUESTS,
    as_bool,
    as_float,
    as_int,
    as_str,
    at_slot,
    first,
    in_request_order,
    read_clip_info,
    read_notes,
    read_song_info,
)
from bridge.ableton.live_values import (
    ClipInfo,
    LiveNote,
    NoteRead,
    SlotRef,
    SlotStatus,
    SongInfo,
    WatchedClip,
)
from bridge.ableton.note_transfer import (
    ALL_NOTES,
    first_windows,
    is_too_long,
    note_chunks,
    notes_request,
    split_window,
)
from bridge.ableton.osc_client import AbletonOscClient, Outcome, Request
from bridge.errors import ErrorCode
from bridge.osc import WireValue

logger = logging.getLogger(__name__)


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
        return read_song_info(self.ask(requests, code=ErrorCode.BAD_INPUT))

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
                    *(at_slot(f"/live/clip/get/{name}", slot.track, slot.scene, optional=i >= 2)
                      for i, name in enumerate(CLIP_FIELDS))]
        try:
            replies, (notes,) = self.burst(requests, [NoteRead(slot.track, slot.scene,
                                                               span_beats, expected)])
        except AbletonError:
            status = self.slot_status(slot.track, slot.scene)
            if not status.has_clip:
                return WatchedClip(self.song_info(), status.track_name, None, ())
            raise
        song = read_song_info(replies[:len(SONG_REQUESTS) + 2])
        track_name = as_str(first(replies[len(SONG_REQUESTS) + 2]), "track name")
        info = read_clip_info(replies[len(SONG_REQUESTS) + 3:])
        return WatchedClip(song, track_name, info, notes)

    def selection(self) -> SlotRef | None:
        """The selected Session slot; None where the master or a return track is selected."""
        track, scene = self.ask([Request("/live/view/get/selected_track", optional=True),
                                 Request("/live/view/get/selected_scene", optional=True)])
        if track is None or scene is None:
            return None
        return SlotRef(as_int(first(track), "selected_track"),
                       as_int(first(scene), "selected_scene"))

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
        windows = [(n, w) for n, read in enumerate(reads) for w in first_windows(read)]
        notes: list[list[LiveNote]] = [[] for _ in reads]
        sent = [requests[i] for i in kept]
        answers: dict[int, tuple[WireValue, ...] | None] = {}
        while True:
            batch = sent + [notes_request(reads[n], w) for n, w in windows]
            outcome = self.exchange(batch)
            self._remember_unknown(outcome)
            payloads, failures = in_request_order(outcome, batch)
            for position, index in enumerate(kept if sent else ()):
                answers[index] = self._answer(batch[position], payloads[position],
                                              failures[position], code)
            smaller: list[tuple[int, tuple[float, float]]] = []
            for position, (n, window) in enumerate(windows, start=len(sent)):
                payload, failure = payloads[position], failures[position]
                if payload is not None:
                    notes[n] += read_notes(payload)
                elif failure is not None and is_too_long(failure):
                    read = reads[n]
                    pieces = split_window(window, read.span_beats, 4)
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
        return as_int(self._one(Request("/live/view/get/selected_track")), "selected_track")

    def selected_scene(self) -> int:
        return as_int(self._one(Request("/live/view/get/selected_scene")), "selected_scene")

    def tempo(self) -> float:
        return as_float(self._one(Request("/live/song/get/tempo")), "tempo")

    def signature(self) -> tuple[int, int]:
        num, den = self.ask([Request("/live/song/get/signature_numerator"),
                             Request("/live/song/get/signature_denominator")])
        return (as_int(first(num), "signature_numerator"),
                as_int(first(den), "signature_denominator"))

    def root_note(self) -> int | None:
        """Live 12's scale root (0 = C); None when Live or AbletonOSC has none."""
        value = self._one(Request("/live/song/get/root_note", optional=True))
        return None if value is None else as_int(value, "root_note")

    def scale_name(self) -> str | None:
        value = self._one(Request("/live/song/get/scale_name", optional=True))
        return None if value is None else str(value)

    # ---- tracks ---------------------------------------------------------------------------

    def num_tracks(self) -> int:
        return as_int(self._one(Request("/live/song/get/num_tracks")), "num_tracks")

    def num_scenes(self) -> int:
        return as_int(self._one(Request("/live/song/get/num_scenes")), "num_scenes")

    def track_name(self, track: int) -> str:
        return as_str(self._one(Request("/live/track/get/name", (track,), 1)), "track name")

    def track_names(self) -> list[str]:
        """Every track's name, one burst of per-track queries (replies carry the index)."""
        count = self.num_tracks()
        replies = self.ask([Request("/live/track/get/name", (t,), 1) for t in range(count)])
        return [as_str(first(r), "track name") for r in replies]

    def set_track_name(self, track: int, name: str) -> None:
        (reply,) = self.ask([Request("/live/track/set/name", (track, name), 1, reply=False),
                             Request("/live/track/get/name", (track,), 1)])
        if first(reply) != name:
            raise AbletonError(f"track {track} is named {first(reply)!r}, not {name!r}")

    def create_midi_track(self) -> int:
        """Append a MIDI track (AbletonOSC does not answer; the track count confirms it) and
        return its index."""
        before = self.num_tracks()
        (reply,) = self.ask([Request("/live/song/create_midi_track", (-1,), reply=False),
                             Request("/live/song/get/num_tracks")])
        after = as_int(first(reply), "num_tracks")
        if after != before + 1:
            raise AbletonError(f"Live did not add a MIDI track ({before} tracks before, "
                               f"{after} after)")
        return after - 1

    def clip_lengths(self, track: int) -> tuple[float | None, ...]:
        """Every slot of `track`: its clip's length, or None (Nil) for an empty slot."""
        reply = self.ask([Request("/live/track/get/clips/length", (track,), 1)])[0] or ()
        return tuple(None if v is None else as_float(v, "clip length") for v in reply)

    # ---- clip slots and clips ---------------------------------------------------------------

    def slot_status(self, track: int, scene: int) -> SlotStatus:
        """The track's name and whether the slot holds a clip, in one burst."""
        name, has = self.ask([Request("/live/track/get/name", (track,), 1),
                              at_slot("/live/clip_slot/get/has_clip", track, scene)])
        return SlotStatus(as_str(first(name), "track name"), as_bool(first(has), "has_clip"))

    def has_clip(self, track: int, scene: int) -> bool:
        return as_bool(self._one(at_slot("/live/clip_slot/get/has_clip", track, scene)), "has_clip")

    def is_midi_clip(self, track: int, scene: int) -> bool:
        return as_bool(self._one(at_slot("/live/clip/get/is_midi_clip", track, scene)),
                       "is_midi_clip")

    def clip_length(self, track: int, scene: int) -> float:
        return as_float(self._one(at_slot("/live/clip/get/length", track, scene)), "clip length")

    def clip_info(self, track: int, scene: int) -> ClipInfo:
        """Kind, name, length and playing region of the clip in one burst. The loop and marker
        properties are optional (older AbletonOSC lacks them; Nil reads as absent)."""
        replies = self.ask([at_slot(f"/live/clip/get/{n}", track, scene, optional=i >= 2)
                            for i, n in enumerate(CLIP_FIELDS)])
        return read_clip_info(replies)

    def create_clip(self, track: int, scene: int, length_beats: float) -> None:
        """Create an empty MIDI clip; confirmed with has_clip before any note is added."""
        (reply,) = self.ask([
            at_slot("/live/clip_slot/create_clip", track, scene, float(length_beats), write=True),
            at_slot("/live/clip_slot/get/has_clip", track, scene),
        ])
        if not as_bool(first(reply), "has_clip"):
            raise AbletonError(f"Live did not create a clip on track {track}, scene {scene}")

    def delete_clip(self, track: int, scene: int) -> None:
        (reply,) = self.ask([at_slot("/live/clip_slot/delete_clip", track, scene, write=True),
                             at_slot("/live/clip_slot/get/has_clip", track, scene)])
        if as_bool(first(reply), "has_clip"):
            raise AbletonError(f"Live did not delete the clip on track {track}, scene {scene}")

    def set_clip_name(self, track: int, scene: int, name: str) -> None:
        self.ask([at_slot("/live/clip/set/name", track, scene, name, write=True),
                  at_slot("/live/clip/get/name", track, scene)])

    def remove_notes(self, track: int, scene: int) -> None:
        """Remove every note (all pitches, all times) from the clip."""
        self.ask([at_slot("/live/clip/remove/notes", track, scene, *ALL_NOTES, write=True),
                  at_slot("/live/clip_slot/get/has_clip", track, scene)])

    def add_notes(self, track: int, scene: int, notes: Sequence[LiveNote]) -> int:
        """Append `notes` in messages of ≤ 256 notes and ≤ MAX_PACKET_BYTES, sent in one burst
        that ends with a has_clip query; returns how many add/notes messages were sent."""
        chunks = note_chunks(track, scene, notes)
        requests = [Request("/live/clip/add/notes", args, 2, reply=False) for args in chunks]
        requests.append(at_slot("/live/clip_slot/get/has_clip", track, scene))
        (reply,) = self.ask(requests)
        if not as_bool(first(reply), "has_clip"):
            raise AbletonError(f"the clip on track {track}, scene {scene} vanished while its "
                               "notes were written")
        return len(chunks)

    def clip_notes(self, track: int, scene: int, *, span_beats: float = 0.0,
                   expected: int = 0) -> tuple[LiveNote, ...]:
        """Every note of the clip (all pitches, all times), sorted by pitch then time, read in
        windows sized from `span_beats` (the clip's length) and `expected` (a note count)."""
        return self.burst([], [NoteRead(track, scene, span_beats, expected)])[1][0]

    def _one(self, request: Request) -> WireValue:
        return first(self.ask([request])[0])
