"""What Live's calls ask and how the answers read: requests to a clip slot, the song's and a
clip's queries, a burst's answers put back in request order, and replies read into values
(each checked, an AbletonError naming the field where AbletonOSC answered something else)."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.ableton.errors import AbletonError
from bridge.ableton.live_values import ClipInfo, LiveNote, SongInfo
from bridge.ableton.osc_client import Outcome, Request
from bridge.osc import WireValue

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


def at_slot(address: str, track: int, scene: int, *args: WireValue, write: bool = False,
            optional: bool = False) -> Request:
    """A query (or with `write`, a write) to the clip slot or clip at `track`, `scene`."""
    return Request(address, (track, scene, *args), 2, reply=not write, optional=optional)


def write_request(address: str, track: int, scene: int, *args: WireValue) -> Request:
    """A write to a clip slot or clip (no reply)."""
    return at_slot(address, track, scene, *args, write=True)


def in_request_order(outcome: Outcome, requests: Sequence[Request]
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


def read_song_info(replies: Sequence[tuple[WireValue, ...] | None]) -> SongInfo:
    """SONG_REQUESTS' replies, then optionally selected_track and selected_scene's."""
    values = [first(r) for r in replies]
    tempo, num, den, root, scale = values[:5]
    track, scene = (values[5], values[6]) if len(values) > 5 else (None, None)
    return SongInfo(
        tempo_bpm=as_float(tempo, "tempo"),
        ts_num=as_int(num, "signature_numerator"),
        ts_den=as_int(den, "signature_denominator"),
        root_note=None if root is None else as_int(root, "root_note"),
        scale_name=None if scale is None else str(scale),
        selected_track=None if track is None else as_int(track, "selected_track"),
        selected_scene=None if scene is None else as_int(scene, "selected_scene"),
    )


def read_clip_info(replies: Sequence[tuple[WireValue, ...] | None]) -> ClipInfo:
    """The replies to CLIP_FIELDS' queries as a ClipInfo."""
    values = dict(zip(CLIP_FIELDS, (first(r) for r in replies), strict=True))
    length = as_float(values["length"], "clip length")
    looping = bool(values["looping"]) if values["looping"] is not None else False
    region = (0.0, length)
    keys = ("loop_start", "loop_end") if looping else ("start_marker", "end_marker")
    start, end = values[keys[0]], values[keys[1]]
    if start is not None and end is not None:
        region = (as_float(start, keys[0]), as_float(end, keys[1]))
    name = values["name"]
    return ClipInfo(
        is_midi=as_bool(values["is_midi_clip"], "is_midi_clip"),
        name=name if isinstance(name, str) else "",
        length_beats=length,
        looping=looping,
        region_start_beats=region[0],
        region_end_beats=region[1],
    )


def read_notes(values: Sequence[WireValue]) -> list[LiveNote]:
    if len(values) % 5:
        raise AbletonError(f"get/notes answered {len(values)} values, not groups of 5")
    return [
        LiveNote(as_int(values[i], "pitch"), as_float(values[i + 1], "start"),
                 as_float(values[i + 2], "duration"), as_float(values[i + 3], "velocity"),
                 as_bool(values[i + 4], "mute"))
        for i in range(0, len(values), 5)
    ]


def first(reply: tuple[WireValue, ...] | None) -> WireValue:
    return reply[0] if reply else None


def as_int(value: WireValue, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a number")
    return int(value)


def as_float(value: WireValue, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a number")
    return float(value)


def as_bool(value: WireValue, what: str) -> bool:
    # AbletonOSC sends Python bools as T/F; older versions and other clients send 0/1.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a boolean")


def as_str(value: WireValue, what: str) -> str:
    if not isinstance(value, str):
        raise AbletonError(f"AbletonOSC answered {what} = {value!r}, not a string")
    return value
