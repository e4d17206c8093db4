"""The clip upload: the messages a client sends for a clip, the size limits, and the bridge
side's state machine (begin → chunks in any order → end with CRC)."""

from __future__ import annotations

import math

from bridge.errors import BadMessageError, ClipTooLargeError
from bridge.protocol.fields import check_values
from bridge.protocol.messages import ClipBegin, ClipEnd, ClipNotes
from bridge.protocol.notes import NoteChunks, chunk_notes, crc32_of_notes
from bridge.protocol.table import BY_TYPE
from bridge.types import MAX_CLIP_BARS, MAX_CLIP_NOTES, Clip


def _check_clip_size(what: str, n_notes: int, end_beats: float, ts_num: int,
                     ts_den: int) -> None:
    if n_notes > MAX_CLIP_NOTES:
        raise ClipTooLargeError(
            f"{what} has {n_notes} notes; at most {MAX_CLIP_NOTES} are accepted"
        )
    bars = end_beats / (ts_num * 4 / ts_den)
    if bars > MAX_CLIP_BARS:
        raise ClipTooLargeError(
            f"{what} is {math.ceil(bars)} bars long; at most {MAX_CLIP_BARS} are accepted"
        )


def check_clip_size(clip: Clip) -> None:
    """ClipTooLargeError (code 2) for more than MAX_CLIP_NOTES notes or MAX_CLIP_BARS bars
    (clip length or last note end); BadMessageError for an impossible meter."""
    fields = dict(BY_TYPE[ClipBegin].args)
    meter = (("ts_num", fields["ts_num"]), ("ts_den", fields["ts_den"]))
    check_values(meter, (clip.ts_num, clip.ts_den), f"clip {clip.name!r}")
    end = max([clip.length_beats] + [n.start_beats + n.duration_beats for n in clip.notes])
    _check_clip_size(f"clip {clip.name!r}", len(clip.notes), end, clip.ts_num, clip.ts_den)


def _fit(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, on a character boundary."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def clip_messages(
    request_id: str, clip: Clip
) -> tuple[ClipBegin, tuple[ClipNotes, ...], ClipEnd]:
    """The upload of `clip`: begin, the note chunks, end (names cut to fit the limits)."""
    check_clip_size(clip)
    chunks = chunk_notes(clip.notes)
    begin = ClipBegin(
        request_id, _fit(clip.name, 256), clip.length_beats, clip.tempo_bpm, clip.ts_num,
        clip.ts_den, len(clip.notes), len(chunks), _fit(clip.source, 128),
        _fit(clip.key_hint or "", 64),
    )
    notes = tuple(ClipNotes(request_id, i, chunk) for i, chunk in enumerate(chunks))
    return begin, notes, ClipEnd(request_id, crc32_of_notes(clip.notes))


class ClipUpload:
    """One clip upload on the bridge side: begin → chunks in any order → end with CRC."""

    def __init__(self, begin: ClipBegin) -> None:
        what = f"clip {begin.request_id}"
        _check_clip_size(what, begin.n_notes, begin.length_beats, begin.ts_num, begin.ts_den)
        self.begin = begin
        self._notes = NoteChunks(what, begin.n_notes, begin.n_chunks)

    @property
    def request_id(self) -> str:
        return self.begin.request_id

    def add(self, message: ClipNotes) -> bool:
        """Store a chunk; False if it is a duplicate."""
        self._check_request(message.request_id)
        return self._notes.add(message.chunk, message.notes)

    def missing(self) -> tuple[int, ...]:
        return self._notes.missing()

    @property
    def complete(self) -> bool:
        return self._notes.complete

    def finish(self, end: ClipEnd, source: str) -> Clip:
        """The clip, once complete and verified (BadMessageError / ClipTooLargeError if not)."""
        self._check_request(end.request_id)
        notes = self._notes.finish(end.crc32)
        b = self.begin
        last_end = max((n.start_beats + n.duration_beats for n in notes), default=0.0)
        _check_clip_size(f"clip {b.request_id}", len(notes), last_end, b.ts_num, b.ts_den)
        return Clip(source, b.name, b.length_beats, b.tempo_bpm, b.ts_num, b.ts_den, notes,
                    b.key_hint or None)

    def _check_request(self, request_id: str) -> None:
        if request_id != self.request_id:
            raise BadMessageError(
                f"message for {request_id} given to the upload of {self.request_id}", "value"
            )

