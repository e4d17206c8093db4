"""Notes between Live and the bridge: a Live clip read as a bridge Clip, generated notes as Live
keeps them, the read-back comparison, and the fingerprint live mode watches."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bridge.ableton.errors import AbletonError, ClipReadError
from bridge.ableton.live_values import ClipInfo, LiveNote, SongInfo
from bridge.errors import ErrorCode
from bridge.protocol import check_clip_size
from bridge.types import Clip, ClipNote

SOURCE = "ableton"  # the source of every clip read from Live
# Live hands times back as 32-bit floats: 1e-3 beats is far above that rounding (≤ 1.3e-4
# at 1,000 bars) and far below any musical difference.
VERIFY_TOLERANCE_BEATS = 1e-3


def clip_from_live(info: ClipInfo, song: SongInfo, notes: Sequence[LiveNote],
                   default_name: str = "") -> Clip:
    """A bridge Clip from a Live clip: the unmuted notes that start in the playing region
    (loop, or start/end markers), timed from the region's start."""
    start, end = info.region_start_beats, info.region_end_beats
    length = end - start
    if not length > 0:
        raise ClipReadError(f"the clip {info.name!r} has no length ({start:g}..{end:g} beats)")
    kept = tuple(
        ClipNote(n.pitch, n.start_beats - start, n.duration_beats,
                 max(1, min(127, round(n.velocity))), 1)
        for n in sorted(notes, key=lambda n: (n.start_beats, n.pitch))
        if not n.mute and start <= n.start_beats < end
    )
    clip = Clip(
        source=SOURCE,
        name=info.name or default_name or "Ableton clip",
        length_beats=length,
        tempo_bpm=song.tempo_bpm,
        ts_num=song.ts_num,
        ts_den=song.ts_den,
        notes=kept,
        key_hint=song.key_hint,
    )
    check_clip_size(clip)  # here too: a clip read for showing must fit what we can generate for
    return clip


def clip_fingerprint(info: ClipInfo, song: SongInfo, notes: Sequence[LiveNote]) -> str:
    """What live mode compares between polls: the clip's notes (order-independent, robust to
    float noise), its playing region and the meter. Not the tempo: the parts do not change
    with it."""
    rows = sorted((n.pitch, round(n.start_beats, 5), round(n.duration_beats, 5),
                   round(n.velocity, 2), n.mute) for n in notes)
    region = (info.looping, round(info.region_start_beats, 5), round(info.region_end_beats, 5))
    return hashlib.blake2b(repr((rows, region, song.ts_num, song.ts_den)).encode(),
                           digest_size=16).hexdigest()


def live_notes(notes: Sequence[ClipNote]) -> list[LiveNote]:
    """Notes as the bridge writes them, sorted by pitch then time. Same-pitch notes that start
    together are merged and overlapping ones cut at the next start: Live does not keep
    overlapping notes of one pitch, so writing them would make the read-back differ."""
    for n in notes:
        if not 0 <= n.pitch <= 127 or not n.duration_beats > 0 or not n.start_beats >= 0:
            raise AbletonError(f"the engine made an unwritable note {n}",
                               ErrorCode.ENGINE_ERROR)
    ordered = sorted(notes, key=lambda n: (n.pitch, n.start_beats, -n.duration_beats))
    result: list[LiveNote] = []
    for n in ordered:
        note = LiveNote(n.pitch, n.start_beats, n.duration_beats,
                        float(max(1, min(127, n.velocity))))
        if result and result[-1].pitch == n.pitch:
            previous = result[-1]
            gap = n.start_beats - previous.start_beats
            if gap < VERIFY_TOLERANCE_BEATS:
                continue  # same start: keep the longest, already placed
            if previous.start_beats + previous.duration_beats > n.start_beats:
                result[-1] = LiveNote(previous.pitch, previous.start_beats, gap,
                                      previous.velocity)
        result.append(note)
    return result


def compare_notes(wanted: Sequence[LiveNote], got: Sequence[LiveNote]) -> str | None:
    """None when `got` (read back, sorted) holds exactly `wanted`, else the first difference."""
    def key(n: LiveNote) -> tuple[int, float]:
        return n.pitch, n.start_beats

    wanted, got = sorted(wanted, key=key), sorted(got, key=key)
    for a, b in zip(wanted, got, strict=False):
        if (a.pitch != b.pitch or b.mute
                or abs(a.start_beats - b.start_beats) > VERIFY_TOLERANCE_BEATS
                or abs(a.duration_beats - b.duration_beats) > VERIFY_TOLERANCE_BEATS
                or round(a.velocity) != round(b.velocity)):
            return f"expected {_describe(a)}, found {_describe(b)}"
    if len(wanted) > len(got):
        return f"{len(wanted) - len(got)} note(s) missing, from {_describe(wanted[len(got)])}"
    if len(got) > len(wanted):
        return f"{len(got) - len(wanted)} unexpected note(s), from {_describe(got[len(wanted)])}"
    return None


def _describe(n: LiveNote) -> str:
    return (f"pitch {n.pitch} at {n.start_beats:g} for {n.duration_beats:g} beats, "
            f"velocity {n.velocity:g}")
