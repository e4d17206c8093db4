"""How note lists cross AbletonOSC's datagrams: add/notes in chunks that each fit one, and
get/notes in time windows sized so that each reply fits one (from the clip's span and any known
note count), split smaller where a reply still did not fit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bridge.ableton.live_requests import at_slot
from bridge.ableton.live_values import LiveNote, NoteRead
from bridge.ableton.osc_client import MAX_PACKET_BYTES, Request, encode
from bridge.osc import WireValue

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


def split_window(window: tuple[float, float], span_beats: float,
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


def first_windows(read: NoteRead) -> list[tuple[float, float]]:
    """The windows a clip's notes are first asked in: enough for the known count, and (count
    unknown) one per WINDOW_BEATS of its span, so that no reply has to be asked for again."""
    pieces = max(math.ceil(read.expected / NOTES_PER_WINDOW) if read.expected else 1,
                 1 if read.expected else math.ceil(read.span_beats / WINDOW_BEATS))
    return split_window((TIME_START, TIME_END), read.span_beats, pieces)


def notes_request(read: NoteRead, window: tuple[float, float]) -> Request:
    lo, hi = window
    return at_slot("/live/clip/get/notes", read.track, read.scene, 0, PITCH_SPAN, lo, hi - lo)


def is_too_long(error: str) -> bool:
    text = error.lower()
    return any(marker in text for marker in TOO_LONG_MARKERS)
