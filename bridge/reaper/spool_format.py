"""The REAPER spool's file format and file names: line-based text that a Lua ReaScript can read
and write without a JSON library. Pure functions; every check raises `BadMessageError` naming
the line (clips over the size limits: `ClipTooLargeError`).

A spool file is UTF-8 text, one record per line; lines end in ``\\n`` (``\\r\\n`` is accepted),
fields are separated by single spaces, and a text field takes the rest of its line::

    ACCOBRIDGE-SPOOL 1                  magic and format version, always the first line
    seq 1718000000001                   sequence number, equal to the one in the file name
    kind clip                           clip | result | error | status
    …lines of that kind…
    end                                 always the last line: a file without it is incomplete

``kind clip`` (REAPER → bridge, ``clip-<seq>.txt``). Fields once each, in any order, before the
first note; name, length_beats, tempo_bpm and ts are required::

    name <text>                         the take's name, 0..256 bytes
    length_beats <decimal>              > 0 (beats are quarter notes from the item start)
    tempo_bpm <decimal>                 1..1000
    ts <num> <den>                      time signature: 1..99 over 1, 2, 4, 8, 16, 32 or 64
    key_hint <text>                     optional, 0..64 bytes
    track <text>                        optional: the take's track, 0..256 bytes
    bar <integer>                       optional: the bar the item starts in, as REAPER shows it
    options <JSON object>               optional generate options, 0..8000 bytes
    note <pitch> <start_beats> <duration_beats> <velocity> <channel>
                                        0..MAX_CLIP_NOTES notes: 0..127, ≥ 0, > 0, 1..127, 1..16

``kind result`` (bridge → REAPER, ``result-<seq>.txt``): fields ``request <id>`` (required,
``[A-Za-z0-9._:-]``, 1..64 bytes), ``source <text>`` (0..128 bytes) and ``summary <JSON
object>`` (optional, ≤ 64 KiB); then per part a ``part <name> <channel>`` line (name
``[a-z0-9_]``, 1..32 bytes; channel 1..16; chords 2, piano 3) followed by that part's ``note``
lines and its ``control <start_beats> <controller> <value> <channel>`` lines (control changes,
e.g. the piano's sustain pedal: controller 64, 127 down, 0 up; 0..127, 0..127, the part's
channel); then ``chord <start_beats> <duration_beats> <symbol>`` lines (symbol 1..32 bytes).

``kind error`` (bridge → REAPER, ``result-<seq>.txt``): ``code <1..99>`` (`ErrorCode`) and
``message <text>`` (0..1024 bytes). ``kind status`` (bridge → REAPER, ``status-<seq>.txt``):
``state <[a-z_]+>``, ``progress <0..1>`` and ``message <text>``.

Numbers: integers ``-?[0-9]+``; decimals add an optional fraction and exponent (``0.5``,
``1e-05``, ``2.5E+3``). No ``nan``, ``inf``, hex, ``_`` or leading ``+``; out-of-range or
non-finite values are refused. Control characters (tab included) are refused everywhere.

Limits: a clip file ≤ 2 MiB and 2 × MAX_CLIP_NOTES + 64 lines, any other file ≤ 64 MiB, a line
≤ 70,000 characters; a clip of more than MAX_CLIP_NOTES notes or MAX_CLIP_BARS bars (clip length or
last note end) is `ClipTooLargeError`; a result holds ≤ 16 parts of ≤ 200,000 notes and
≤ 200,000 control changes each, and ≤ 100,000 chords.

File names (checked by one strict regex; anything else is not a spool file): ``clip-<seq>.txt``,
``result-<seq>.txt``, ``status-<seq>.txt`` with ``<seq>`` in 0..2⁵³−1, decimal, no leading
zeros. Names are only ever built from an int here, never taken from file content.

This module is the front door: the documents, file names, the clip, error and status formats
and `parse`; `spool_syntax` holds the line syntax and limits, `spool_result` the result body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from bridge.errors import BadMessageError, ClipTooLargeError
from bridge.protocol import check_clip_size
from bridge.reaper.spool_result import read_result, result_lines
from bridge.reaper.spool_syntax import (
    BAR,
    CODE,
    FORMAT_VERSION,
    HEADER,
    KEY_HINT,
    KINDS,
    LENGTH_BEATS,
    MAGIC,
    MAX_CLIP_FILE_BYTES,
    MAX_CLIP_LINES,
    MAX_FILE_BYTES,
    MAX_OTHER_LINES,
    MAX_SEQ,
    MESSAGE,
    NAME,
    OPTIONS,
    PROGRESS,
    SEQ_FIELD,
    STATE,
    TEMPO_BPM,
    TRACK,
    TS_DEN,
    TS_NUM,
    LineReader,
    check_value,
    checked_seq,
    file_text,
    json_line,
    note_line,
    number,
    one_line,
    read_float,
    read_int,
    read_json_object,
    read_note,
    read_text,
    require_fields,
    split_values,
)
from bridge.types import MAX_CLIP_NOTES, Clip, ClipNote, GenerateResult

__all__ = [
    "HEADER", "MAX_CLIP_FILE_BYTES", "MAX_SEQ", "SpoolClip", "SpoolDocument", "SpoolError",
    "SpoolResult", "SpoolStatus", "clip_file_name", "format_clip", "format_error",
    "format_result", "format_status", "is_temporary_name", "one_line", "parse", "parse_clip",
    "parse_file_name", "result_file_name", "status_file_name",
]

_SEQ = r"(0|[1-9][0-9]{0,15})"
_FILE_NAME = re.compile(rf"(clip|result|status)-{_SEQ}\.txt")
# In-progress writes: the script's `clip-<seq>.tmp`, the bridge's `.result-<seq>.txt.<rnd>.tmp`.
_TMP_NAME = re.compile(
    rf"clip-{_SEQ}\.tmp|\.(result|status)-{_SEQ}\.txt\.[A-Za-z0-9_]{{1,32}}\.tmp"
)


# ---- the documents --------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolClip:
    """A melody clip the script sent, with the generate options it asked for and where its
    item is (scripts before the `track` and `bar` fields send neither)."""

    seq: int
    clip: Clip
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    track: str | None = None
    bar: int | None = None


@dataclass(frozen=True)
class SpoolResult:
    seq: int
    result: GenerateResult


@dataclass(frozen=True)
class SpoolError:
    seq: int
    code: int
    message: str


@dataclass(frozen=True)
class SpoolStatus:
    seq: int
    state: str
    progress: float
    message: str


SpoolDocument = SpoolClip | SpoolResult | SpoolError | SpoolStatus


# ---- file names -------------------------------------------------------------------------


def clip_file_name(seq: int) -> str:
    return f"clip-{checked_seq(seq)}.txt"


def result_file_name(seq: int) -> str:
    return f"result-{checked_seq(seq)}.txt"


def status_file_name(seq: int) -> str:
    return f"status-{checked_seq(seq)}.txt"


def parse_file_name(name: str) -> tuple[str, int] | None:
    """("clip" | "result" | "status", seq) for a spool file name, None for anything else."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        return None
    seq = int(match[2])
    return (match[1], seq) if seq <= MAX_SEQ else None


def is_temporary_name(name: str) -> bool:
    """Whether `name` is a spool file still being written (by the script or by the bridge)."""
    return _TMP_NAME.fullmatch(name) is not None


# ---- formatting ---------------------------------------------------------------------------


def format_clip(seq: int, clip: Clip, options: Mapping[str, Any] | None = None, *,
                track: str | None = None, bar: int | None = None) -> str:
    """A ``clip`` file (what the Lua script writes; used by tests and tools). The name, key
    hint and track are made to fit (`one_line`); other values must be valid (BadMessageError),
    and the clip within the size limits (ClipTooLargeError)."""
    for name, field_, value in (("length_beats", LENGTH_BEATS, clip.length_beats),
                                ("tempo_bpm", TEMPO_BPM, clip.tempo_bpm),
                                ("ts num", TS_NUM, clip.ts_num), ("ts den", TS_DEN, clip.ts_den)):
        check_value(field_, value, f"clip {name}")
    if bar is not None:
        check_value(BAR, bar, "clip bar")
    check_clip_size(clip)
    body = [f"name {one_line(clip.name, NAME.max_bytes)}",
            f"length_beats {number(clip.length_beats)}",
            f"tempo_bpm {number(clip.tempo_bpm)}",
            f"ts {clip.ts_num} {clip.ts_den}"]
    if clip.key_hint is not None:
        body.append(f"key_hint {one_line(clip.key_hint, KEY_HINT.max_bytes)}")
    if track is not None:
        body.append(f"track {one_line(track, TRACK.max_bytes)}")
    if bar is not None:
        body.append(f"bar {bar}")
    if options:
        body.append(f"options {json_line(options, OPTIONS, 'options')}")
    body.extend(note_line(note, f"note {i}") for i, note in enumerate(clip.notes))
    return file_text(seq, "clip", body)


def format_result(seq: int, result: GenerateResult) -> str:
    """A ``result`` file (see `spool_result.result_lines` for what is refused)."""
    return file_text(seq, "result", result_lines(result))


def format_error(seq: int, code: int, message: str) -> str:
    """An ``error`` file; the message is made to fit (`one_line`)."""
    check_value(CODE, code, "error code")
    return file_text(seq, "error", [f"code {code}",
                                    f"message {one_line(message, MESSAGE.max_bytes)}"])


def format_status(seq: int, state: str, progress: float, message: str) -> str:
    """A ``status`` file; the message is made to fit (`one_line`)."""
    check_value(STATE, state, "status state")
    check_value(PROGRESS, progress, "status progress")
    return file_text(seq, "status", [f"state {state}", f"progress {number(progress)}",
                                     f"message {one_line(message, MESSAGE.max_bytes)}"])

def parse(data: bytes | str, *, source: str = "reaper") -> SpoolDocument:
    """Any spool file, checked completely. A clip's `Clip.source` is `source` (the file does not
    carry it). BadMessageError names the line; ClipTooLargeError for clips over the limits."""
    clip_sized = _peek_kind(data) == "clip"
    reader = LineReader(data, MAX_CLIP_FILE_BYTES if clip_sized else MAX_FILE_BYTES,
                     MAX_CLIP_LINES if clip_sized else MAX_OTHER_LINES)
    header = reader.raw()
    if header != HEADER:
        magic, _, version = header.partition(" ")
        if magic == MAGIC:
            raise reader.fail(f"unsupported spool format version {version[:20]!r}; this bridge "
                              f"reads version {FORMAT_VERSION}", "version")
        raise reader.fail(f"not a spool file: the first line must be {HEADER!r}", "header")
    seq = read_int(reader.expect("seq"), SEQ_FIELD, reader.number, "seq")
    kind = reader.expect("kind")
    if kind not in KINDS:
        raise reader.fail(f"kind must be one of {', '.join(KINDS)}, got {kind[:40]!r}", "kind")
    document: SpoolDocument
    if kind == "clip":
        document = _parse_clip(reader, seq, source)
    elif kind == "result":
        document = SpoolResult(seq, read_result(reader))
    elif kind == "error":
        found, _, _ = reader.fields(("code", "message"), ("end",))
        require_fields(found, ("code", "message"), reader)
        code = found["code"]
        document = SpoolError(seq, read_int(code.value, CODE, code.number, "code"),
                              read_text(found, "message", MESSAGE))
    else:
        found, _, _ = reader.fields(("state", "progress", "message"), ("end",))
        require_fields(found, ("state", "progress", "message"), reader)
        document = SpoolStatus(
            seq, read_text(found, "state", STATE),
            read_float(found["progress"].value, PROGRESS, found["progress"].number, "progress"),
            read_text(found, "message", MESSAGE),
        )
    reader.finish()
    return document


def parse_clip(data: bytes | str, *, source: str = "reaper", seq: int | None = None) -> SpoolClip:
    """A ``clip`` file (BadMessageError for any other kind, or for a seq other than `seq`,
    the one in its file name)."""
    document = parse(data, source=source)
    if not isinstance(document, SpoolClip):
        raise BadMessageError(f"line 3: expected a clip file, got kind {_kind(document)}", "kind")
    if seq is not None and document.seq != seq:
        raise BadMessageError(f"line 2: seq {document.seq} differs from the file name's {seq}",
                              "seq")
    return document


def _kind(document: SpoolDocument) -> str:
    return {SpoolClip: "clip", SpoolResult: "result", SpoolError: "error",
            SpoolStatus: "status"}[type(document)]


def _parse_clip(reader: LineReader, seq: int, source: str) -> SpoolClip:
    keys = ("name", "length_beats", "tempo_bpm", "ts", "key_hint", "track", "bar", "options")
    found, stop, rest = reader.fields(keys, ("note", "end"))
    require_fields(found, keys[:4], reader)
    ts = found["ts"]
    ts_num, ts_den = split_values(ts.value, 2, ts.number, "ts")
    length, tempo = found["length_beats"], found["tempo_bpm"]
    options = found.get("options")
    key_hint = found.get("key_hint")
    clip = Clip(
        source=source,
        name=read_text(found, "name", NAME),
        length_beats=read_float(length.value, LENGTH_BEATS, length.number, "length_beats"),
        tempo_bpm=read_float(tempo.value, TEMPO_BPM, tempo.number, "tempo_bpm"),
        ts_num=read_int(ts_num, TS_NUM, ts.number, "ts num"),
        ts_den=read_int(ts_den, TS_DEN, ts.number, "ts den"),
        notes=(),
        key_hint=None if key_hint is None else read_text(found, "key_hint", KEY_HINT),
    )
    notes: list[ClipNote] = []
    while stop == "note":
        if len(notes) == MAX_CLIP_NOTES:
            raise ClipTooLargeError(f"line {reader.number}: clip {clip.name!r} has more than "
                                    f"{MAX_CLIP_NOTES} notes; at most {MAX_CLIP_NOTES} are "
                                    "accepted")
        notes.append(read_note(rest, reader.number))
        stop, rest = reader.next()
        if stop not in ("note", "end"):
            raise reader.fail(f"expected 'note' or 'end', got {stop!r}", "order")
    clip = replace(clip, notes=tuple(notes))
    check_clip_size(clip)  # bars: clip length or last note end
    parsed_options = ({} if options is None
                      else read_json_object(options.value, OPTIONS, options.number, "options"))
    bar = found.get("bar")
    return SpoolClip(seq, clip, MappingProxyType(parsed_options),
                     track=read_text(found, "track", TRACK) if "track" in found else None,
                     bar=None if bar is None else read_int(bar.value, BAR, bar.number, "bar"))


def _peek_kind(data: bytes | str) -> str | None:
    """The kind named on the third line, read cheaply to pick the size limits."""
    head = data[:200]
    text = head.decode("utf-8", errors="replace") if isinstance(head, bytes) else head
    lines = text.split("\n")
    return lines[2].rstrip("\r").removeprefix("kind ") if len(lines) >= 3 else None
