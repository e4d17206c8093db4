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
    options <JSON object>               optional generate options, 0..8000 bytes
    note <pitch> <start_beats> <duration_beats> <velocity> <channel>
                                        0..MAX_CLIP_NOTES notes: 0..127, ≥ 0, > 0, 1..127, 1..16

``kind result`` (bridge → REAPER, ``result-<seq>.txt``): fields ``request <id>`` (required,
``[A-Za-z0-9._:-]``, 1..64 bytes), ``source <text>`` (0..128 bytes) and ``summary <JSON
object>`` (optional, ≤ 64 KiB); then per part a ``part <name> <channel>`` line (name
``[a-z0-9_]``, 1..32 bytes; channel 1..16; chords 2, piano 3) followed by that part's ``note``
lines; then ``chord <start_beats> <duration_beats> <symbol>`` lines (symbol 1..32 bytes).

``kind error`` (bridge → REAPER, ``result-<seq>.txt``): ``code <1..99>`` (`ErrorCode`) and
``message <text>`` (0..1024 bytes). ``kind status`` (bridge → REAPER, ``status-<seq>.txt``):
``state <[a-z_]+>``, ``progress <0..1>`` and ``message <text>``.

Numbers: integers ``-?[0-9]+``; decimals add an optional fraction and exponent (``0.5``,
``1e-05``, ``2.5E+3``). No ``nan``, ``inf``, hex, ``_`` or leading ``+``; out-of-range or
non-finite values are refused. Control characters (tab included) are refused everywhere.

Limits: a clip file ≤ 2 MiB and 2 × MAX_CLIP_NOTES + 64 lines, any other file ≤ 64 MiB, a line
≤ 70,000 characters; a clip of more than MAX_CLIP_NOTES notes or MAX_CLIP_BARS bars (clip length or
last note end) is `ClipTooLargeError`; a result holds ≤ 16 parts of ≤ 200,000 notes and
≤ 100,000 chords.

File names (checked by one strict regex; anything else is not a spool file): ``clip-<seq>.txt``,
``result-<seq>.txt``, ``status-<seq>.txt`` with ``<seq>`` in 0..2⁵³−1, decimal, no leading
zeros. Names are only ever built from an int here, never taken from file content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar

from bridge.errors import BadMessageError, ClipTooLargeError
from bridge.protocol import (
    MAX_PARAMS_BYTES,
    MAX_PART_NOTES,
    MAX_PARTS,
    MAX_SUMMARY_BYTES,
    REQUEST_ID,
    Float,
    Int,
    Text,
    check_clip_size,
    part_order,
)
from bridge.types import (
    MAX_CLIP_NOTES,
    PART_CHANNELS,
    ChordSymbol,
    Clip,
    ClipNote,
    GenerateResult,
)

MAGIC: Final = "ACCOBRIDGE-SPOOL"
FORMAT_VERSION: Final = 1
HEADER: Final = f"{MAGIC} {FORMAT_VERSION}"
KINDS: Final = ("clip", "result", "error", "status")
MAX_SEQ: Final = 2**53 - 1  # exact in a double: Lua 5.3/5.4 and JSON readers agree on it
MAX_CLIP_FILE_BYTES: Final = 2 * 1024 * 1024
MAX_CLIP_LINES: Final = 2 * MAX_CLIP_NOTES + 64  # room for too many notes to be "too large"
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_RESULT_CHORDS: Final = 100_000
MAX_OTHER_LINES: Final = MAX_PARTS * (MAX_PART_NOTES + 1) + MAX_RESULT_CHORDS + 16
MAX_LINE_CHARS: Final = 70_000  # the longest field, a summary, is 64 KiB
MAX_MESSAGE_BYTES: Final = 1_024

_SEQ = r"(0|[1-9][0-9]{0,15})"
_FILE_NAME = re.compile(rf"(clip|result|status)-{_SEQ}\.txt")
# In-progress writes: the script's `clip-<seq>.tmp`, the bridge's `.result-<seq>.txt.<rnd>.tmp`.
_TMP_NAME = re.compile(
    rf"clip-{_SEQ}\.tmp|\.(result|status)-{_SEQ}\.txt\.[A-Za-z0-9_]{{1,32}}\.tmp"
)
_KEY = re.compile(r"[a-z_]{1,32}")
_INT = re.compile(r"-?[0-9]{1,19}")
_DECIMAL = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?(?:[eE][-+]?[0-9]{1,4})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SEQ_FIELD: Final = Int(0, MAX_SEQ)
NAME: Final = Text(256)
LENGTH_BEATS: Final = Float(0.0, lo_open=True)
TEMPO_BPM: Final = Float(1.0, 1000.0)
TS_NUM: Final = Int(1, 99)
TS_DEN: Final = Int(1, 64, (1, 2, 4, 8, 16, 32, 64))
KEY_HINT: Final = Text(64)
OPTIONS: Final = Text(MAX_PARAMS_BYTES)
SOURCE: Final = Text(128)
SUMMARY: Final = Text(MAX_SUMMARY_BYTES)
PART_NAME: Final = Text(32, 1, r"[a-z0-9_]+")
CHANNEL: Final = Int(1, 16)
PITCH: Final = Int(0, 127)
START_BEATS: Final = Float(0.0)
DURATION_BEATS: Final = Float(0.0, lo_open=True)
VELOCITY: Final = Int(1, 127)
SYMBOL: Final = Text(32, 1)
CODE: Final = Int(1, 99)
STATE: Final = Text(32, 1, r"[a-z_]+")
PROGRESS: Final = Float(0.0, 1.0)
MESSAGE: Final = Text(MAX_MESSAGE_BYTES)

T_co = TypeVar("T_co", covariant=True)


class _Field(Protocol[T_co]):
    """A validator from `bridge.protocol` (Int, Float, Text): `check` raises ValueError."""

    def check(self, value: object) -> T_co: ...


# ---- the documents --------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolClip:
    """A melody clip the script sent, with the generate options it asked for."""

    seq: int
    clip: Clip
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


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


def _checked_seq(seq: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise BadMessageError(f"seq must be an integer in 0..{MAX_SEQ}, got {seq!r}", "seq")
    return seq


def clip_file_name(seq: int) -> str:
    return f"clip-{_checked_seq(seq)}.txt"


def result_file_name(seq: int) -> str:
    return f"result-{_checked_seq(seq)}.txt"


def status_file_name(seq: int) -> str:
    return f"status-{_checked_seq(seq)}.txt"


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


def one_line(text: str, max_bytes: int) -> str:
    """`text` made fit for a text field: control characters become spaces, unencodable
    characters '?', then cut to `max_bytes` UTF-8 bytes on a character boundary."""
    data = _CONTROL.sub(" ", text).encode("utf-8", errors="replace")
    return data[:max_bytes].decode("utf-8", errors="ignore")


def _format_check(field_: _Field[Any], value: object, what: str) -> None:
    try:
        field_.check(value)
    except ValueError as err:
        raise BadMessageError(f"{what} {err}", "value") from err


def _number(value: float) -> str:
    return repr(float(value))  # shortest exact form: "0.5", "1e-05", "120.0"


def _json_line(value: Mapping[str, Any], field_: Text, what: str) -> str:
    try:
        text = json.dumps(dict(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise BadMessageError(f"{what} cannot be written as JSON: {err}", "json") from err
    _format_check(field_, text, what)
    return text


def _summary_line(summary: Mapping[str, Any]) -> str:
    # A summary is informative only: whatever cannot be written is replaced, never fatal.
    try:
        text = json.dumps(dict(summary), ensure_ascii=True, separators=(",", ":"),
                          allow_nan=False, default=str)
    except (TypeError, ValueError):
        return '{"truncated":true}'
    return text if len(text) <= MAX_SUMMARY_BYTES else '{"truncated":true}'


def _note_line(note: ClipNote, what: str, channel: int | None = None) -> str:
    ch = note.channel if channel is None else channel
    for name, field_, value in (("pitch", PITCH, note.pitch),
                                ("start_beats", START_BEATS, note.start_beats),
                                ("duration_beats", DURATION_BEATS, note.duration_beats),
                                ("velocity", VELOCITY, note.velocity), ("channel", CHANNEL, ch)):
        _format_check(field_, value, f"{what} {name}")
    return (f"note {note.pitch} {_number(note.start_beats)} {_number(note.duration_beats)} "
            f"{note.velocity} {ch}")


def _document(seq: int, kind: str, body: Iterable[str]) -> str:
    return "\n".join([HEADER, f"seq {_checked_seq(seq)}", f"kind {kind}", *body, "end", ""])


def format_clip(seq: int, clip: Clip, options: Mapping[str, Any] | None = None) -> str:
    """A ``clip`` file (what the Lua script writes; used by tests and tools). The name and key
    hint are made to fit (`one_line`); other values must be valid (BadMessageError), and the
    clip within the size limits (ClipTooLargeError)."""
    for name, field_, value in (("length_beats", LENGTH_BEATS, clip.length_beats),
                                ("tempo_bpm", TEMPO_BPM, clip.tempo_bpm),
                                ("ts num", TS_NUM, clip.ts_num), ("ts den", TS_DEN, clip.ts_den)):
        _format_check(field_, value, f"clip {name}")
    check_clip_size(clip)
    body = [f"name {one_line(clip.name, NAME.max_bytes)}",
            f"length_beats {_number(clip.length_beats)}",
            f"tempo_bpm {_number(clip.tempo_bpm)}",
            f"ts {clip.ts_num} {clip.ts_den}"]
    if clip.key_hint is not None:
        body.append(f"key_hint {one_line(clip.key_hint, KEY_HINT.max_bytes)}")
    if options:
        body.append(f"options {_json_line(options, OPTIONS, 'options')}")
    body.extend(_note_line(note, f"note {i}") for i, note in enumerate(clip.notes))
    return _document(seq, "clip", body)


def format_result(seq: int, result: GenerateResult) -> str:
    """A ``result`` file. Each part's notes go out on its channel from PART_CHANNELS; an unknown
    part, an invalid note or chord, or too many of them is a BadMessageError."""
    _format_check(REQUEST_ID, result.request_id, "result request")
    names = part_order(result.parts)
    if len(names) > MAX_PARTS:
        raise BadMessageError(f"result has {len(names)} parts; at most {MAX_PARTS}", "size")
    body = [f"request {result.request_id}", f"source {one_line(result.source, SOURCE.max_bytes)}",
            f"summary {_summary_line(result.summary)}"]
    for name in names:
        channel = PART_CHANNELS.get(name)
        if channel is None:
            raise BadMessageError(
                f"result part {name!r} has no MIDI channel (known: {', '.join(PART_CHANNELS)})",
                "part",
            )
        notes = result.parts[name]
        if len(notes) > MAX_PART_NOTES:
            raise BadMessageError(
                f"part {name} has {len(notes)} notes; at most {MAX_PART_NOTES}", "size"
            )
        body.append(f"part {name} {channel}")
        body.extend(_note_line(note, f"part {name} note {i}", channel)
                    for i, note in enumerate(notes))
    if len(result.chords) > MAX_RESULT_CHORDS:
        raise BadMessageError(
            f"result has {len(result.chords)} chords; at most {MAX_RESULT_CHORDS}", "size"
        )
    for i, chord in enumerate(result.chords):
        symbol = one_line(chord.symbol, SYMBOL.max_bytes)
        for name, field_, value in (("start_beats", START_BEATS, chord.start_beats),
                                    ("duration_beats", DURATION_BEATS, chord.duration_beats),
                                    ("symbol", SYMBOL, symbol)):
            _format_check(field_, value, f"chord {i} {name}")
        body.append(f"chord {_number(chord.start_beats)} {_number(chord.duration_beats)} "
                    f"{symbol}")
    return _document(seq, "result", body)


def format_error(seq: int, code: int, message: str) -> str:
    """An ``error`` file; the message is made to fit (`one_line`)."""
    _format_check(CODE, code, "error code")
    return _document(seq, "error", [f"code {code}",
                                    f"message {one_line(message, MESSAGE.max_bytes)}"])


def format_status(seq: int, state: str, progress: float, message: str) -> str:
    """A ``status`` file; the message is made to fit (`one_line`)."""
    _format_check(STATE, state, "status state")
    _format_check(PROGRESS, progress, "status progress")
    return _document(seq, "status", [f"state {state}", f"progress {_number(progress)}",
                                     f"message {one_line(message, MESSAGE.max_bytes)}"])


# ---- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    value: str  # the text after "<key> "


class _Reader:
    """The lines of one file, read front to back; errors name the line."""

    def __init__(self, data: bytes | str, max_bytes: int, max_lines: int) -> None:
        size = len(data.encode("utf-8", errors="replace") if isinstance(data, str) else data)
        if size > max_bytes:
            raise BadMessageError(f"file is {size} bytes; at most {max_bytes} are accepted",
                                  "size")
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                line = data[:err.start].count(b"\n") + 1
                raise BadMessageError(f"line {line}: not UTF-8 text: {err.reason}",
                                      "utf8") from err
        else:
            text = data
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
        if len(lines) > max_lines:
            raise BadMessageError(f"file has {len(lines)} lines; at most {max_lines} are accepted",
                                  "size")
        self._lines = lines
        self.number = 0  # the line last read, 1-based

    def fail(self, message: str, reason: str) -> BadMessageError:
        return BadMessageError(f"line {self.number}: {message}", reason)

    def raw(self) -> str:
        """The next line as it is (without its line end), checked for size and controls."""
        if self.number >= len(self._lines):
            raise BadMessageError(
                f"line {self.number + 1}: the file ends before its 'end' line (incomplete)",
                "incomplete",
            )
        line = self._lines[self.number]
        self.number += 1
        if line.endswith("\r"):
            line = line[:-1]
        if len(line) > MAX_LINE_CHARS:
            raise self.fail(f"line is longer than {MAX_LINE_CHARS} characters", "size")
        control = _CONTROL.search(line)
        if control is not None:
            raise self.fail(f"control character {control[0]!r} at column {control.start() + 1}",
                            "parse")
        return line

    def next(self) -> tuple[str, str]:
        """(key, rest) of the next line."""
        key, _, rest = self.raw().partition(" ")
        if _KEY.fullmatch(key) is None:
            raise self.fail(f"expected a lower-case key at the start, got {key[:40]!r}", "parse")
        return key, rest

    def expect(self, key: str) -> str:
        found, rest = self.next()
        if found != key:
            raise self.fail(f"expected {key!r}, got {found!r}", "order")
        return rest

    def fields(self, allowed: Iterable[str],
               stop: Iterable[str]) -> tuple[dict[str, _Line], str, str]:
        """Read `key value` lines (each key at most once) until a key in `stop`; returns them,
        and the stop line's key and rest (that line is consumed)."""
        allowed_keys, stop_keys = set(allowed), set(stop)
        found: dict[str, _Line] = {}
        while True:
            key, rest = self.next()
            if key in stop_keys:
                return found, key, rest
            if key not in allowed_keys:
                raise self.fail(f"unknown or misplaced field {key!r}", "order")
            if key in found:
                raise self.fail(f"{key!r} given twice (first on line {found[key].number})",
                                "duplicate")
            found[key] = _Line(self.number, rest)

    def finish(self) -> None:
        if self.number != len(self._lines):
            self.number += 1
            raise self.fail("text after the 'end' line", "parse")


T = TypeVar("T")


def _check(field_: _Field[T], value: object, line: int, what: str) -> T:
    try:
        return field_.check(value)
    except ValueError as err:
        raise BadMessageError(f"line {line}: {what} {err}", "value") from err


def _int(text: str, field_: _Field[int], line: int, what: str) -> int:
    if _INT.fullmatch(text) is None:
        raise BadMessageError(f"line {line}: {what} must be an integer, got {text[:40]!r}",
                              "value")
    return _check(field_, int(text), line, what)


def _float(text: str, field_: _Field[float], line: int, what: str) -> float:
    if _DECIMAL.fullmatch(text) is None:
        raise BadMessageError(f"line {line}: {what} must be a decimal number, got {text[:40]!r}",
                              "value")
    return _check(field_, float(text), line, what)


def _json_object(text: str, field_: Text, line: int, what: str) -> dict[str, Any]:
    _check(field_, text, line, what)

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as err:  # RecursionError: absurdly deep nesting
        raise BadMessageError(f"line {line}: {what} is not JSON: {err}", "json") from err
    if not isinstance(value, dict):
        raise BadMessageError(
            f"line {line}: {what} must be a JSON object, got {type(value).__name__}", "json"
        )
    return value


def _split(text: str, n: int, line: int, what: str) -> list[str]:
    parts = text.split(" ")
    if len(parts) != n:
        raise BadMessageError(
            f"line {line}: {what} needs {n} values separated by single spaces, got {text[:60]!r}",
            "parse",
        )
    return parts


def _required(found: Mapping[str, _Line], keys: Iterable[str], reader: _Reader) -> None:
    missing = [key for key in keys if key not in found]
    if missing:
        raise reader.fail(f"missing field(s) {', '.join(missing)} before this line", "missing")


def _note(text: str, line: int) -> ClipNote:
    pitch, start, duration, velocity, channel = _split(text, 5, line, "note")
    return ClipNote(
        _int(pitch, PITCH, line, "note pitch"),
        _float(start, START_BEATS, line, "note start_beats"),
        _float(duration, DURATION_BEATS, line, "note duration_beats"),
        _int(velocity, VELOCITY, line, "note velocity"),
        _int(channel, CHANNEL, line, "note channel"),
    )


def parse(data: bytes | str, *, source: str = "reaper") -> SpoolDocument:
    """Any spool file, checked completely. A clip's `Clip.source` is `source` (the file does not
    carry it). BadMessageError names the line; ClipTooLargeError for clips over the limits."""
    clip_sized = _peek_kind(data) == "clip"
    reader = _Reader(data, MAX_CLIP_FILE_BYTES if clip_sized else MAX_FILE_BYTES,
                     MAX_CLIP_LINES if clip_sized else MAX_OTHER_LINES)
    header = reader.raw()
    if header != HEADER:
        magic, _, version = header.partition(" ")
        if magic == MAGIC:
            raise reader.fail(f"unsupported spool format version {version[:20]!r}; this bridge "
                              f"reads version {FORMAT_VERSION}", "version")
        raise reader.fail(f"not a spool file: the first line must be {HEADER!r}", "header")
    seq = _int(reader.expect("seq"), SEQ_FIELD, reader.number, "seq")
    kind = reader.expect("kind")
    if kind not in KINDS:
        raise reader.fail(f"kind must be one of {', '.join(KINDS)}, got {kind[:40]!r}", "kind")
    document: SpoolDocument
    if kind == "clip":
        document = _parse_clip(reader, seq, source)
    elif kind == "result":
        document = _parse_result(reader, seq)
    elif kind == "error":
        found, _, _ = reader.fields(("code", "message"), ("end",))
        _required(found, ("code", "message"), reader)
        document = SpoolError(seq, _int(found["code"].value, CODE, found["code"].number, "code"),
                              _text(found, "message", MESSAGE))
    else:
        found, _, _ = reader.fields(("state", "progress", "message"), ("end",))
        _required(found, ("state", "progress", "message"), reader)
        document = SpoolStatus(
            seq, _text(found, "state", STATE),
            _float(found["progress"].value, PROGRESS, found["progress"].number, "progress"),
            _text(found, "message", MESSAGE),
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


def _text(found: Mapping[str, _Line], key: str, field_: _Field[str]) -> str:
    line = found[key]
    return _check(field_, line.value, line.number, key)


def _parse_clip(reader: _Reader, seq: int, source: str) -> SpoolClip:
    keys = ("name", "length_beats", "tempo_bpm", "ts", "key_hint", "options")
    found, stop, rest = reader.fields(keys, ("note", "end"))
    _required(found, keys[:4], reader)
    ts = found["ts"]
    ts_num, ts_den = _split(ts.value, 2, ts.number, "ts")
    length, tempo = found["length_beats"], found["tempo_bpm"]
    options = found.get("options")
    key_hint = found.get("key_hint")
    clip = Clip(
        source=source,
        name=_text(found, "name", NAME),
        length_beats=_float(length.value, LENGTH_BEATS, length.number, "length_beats"),
        tempo_bpm=_float(tempo.value, TEMPO_BPM, tempo.number, "tempo_bpm"),
        ts_num=_int(ts_num, TS_NUM, ts.number, "ts num"),
        ts_den=_int(ts_den, TS_DEN, ts.number, "ts den"),
        notes=(),
        key_hint=None if key_hint is None else _text(found, "key_hint", KEY_HINT),
    )
    notes: list[ClipNote] = []
    while stop == "note":
        if len(notes) == MAX_CLIP_NOTES:
            raise ClipTooLargeError(f"line {reader.number}: clip {clip.name!r} has more than "
                                    f"{MAX_CLIP_NOTES} notes; at most {MAX_CLIP_NOTES} are "
                                    "accepted")
        notes.append(_note(rest, reader.number))
        stop, rest = reader.next()
        if stop not in ("note", "end"):
            raise reader.fail(f"expected 'note' or 'end', got {stop!r}", "order")
    clip = replace(clip, notes=tuple(notes))
    check_clip_size(clip)  # bars: clip length or last note end
    parsed_options = ({} if options is None
                      else _json_object(options.value, OPTIONS, options.number, "options"))
    return SpoolClip(seq, clip, MappingProxyType(parsed_options))


def _parse_result(reader: _Reader, seq: int) -> SpoolResult:
    found, key, rest = reader.fields(("request", "source", "summary"), ("part", "chord", "end"))
    _required(found, ("request",), reader)
    summary = found.get("summary")
    parts: dict[str, list[ClipNote]] = {}
    chords: list[ChordSymbol] = []
    current: list[ClipNote] | None = None
    while key != "end":
        line = reader.number
        if key == "part":
            if chords:
                raise reader.fail("parts must come before the chords", "order")
            name_text, channel = _split(rest, 2, line, "part")
            name = _check(PART_NAME, name_text, line, "part name")
            _int(channel, CHANNEL, line, "part channel")
            if name in parts:
                raise reader.fail(f"part {name!r} given twice", "duplicate")
            if len(parts) == MAX_PARTS:
                raise reader.fail(f"more than {MAX_PARTS} parts", "size")
            current = parts[name] = []
        elif key == "note":
            if current is None or chords:
                raise reader.fail("a note must follow its 'part' line", "order")
            if len(current) == MAX_PART_NOTES:
                raise reader.fail(f"a part has more than {MAX_PART_NOTES} notes", "size")
            current.append(_note(rest, line))
        elif key == "chord":
            if len(chords) == MAX_RESULT_CHORDS:
                raise reader.fail(f"more than {MAX_RESULT_CHORDS} chords", "size")
            start, duration, symbol = (rest.split(" ", 2) + ["", ""])[:3]
            chords.append(ChordSymbol(_float(start, START_BEATS, line, "chord start_beats"),
                                      _float(duration, DURATION_BEATS, line,
                                             "chord duration_beats"),
                                      _check(SYMBOL, symbol, line, "chord symbol")))
        else:
            raise reader.fail(f"expected 'part', 'note', 'chord' or 'end', got {key!r}", "order")
        key, rest = reader.next()
    result = GenerateResult(
        request_id=_text(found, "request", REQUEST_ID),
        source=_text(found, "source", SOURCE) if "source" in found else "",
        parts={name: tuple(notes) for name, notes in parts.items()},
        chords=tuple(chords),
        summary=({} if summary is None
                 else _json_object(summary.value, SUMMARY, summary.number, "summary")),
    )
    return SpoolResult(seq, result)


def _peek_kind(data: bytes | str) -> str | None:
    """The kind named on the third line, read cheaply to pick the size limits."""
    head = data[:200]
    text = head.decode("utf-8", errors="replace") if isinstance(head, bytes) else head
    lines = text.split("\n")
    return lines[2].rstrip("\r").removeprefix("kind ") if len(lines) >= 3 else None
